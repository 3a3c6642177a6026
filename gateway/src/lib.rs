//! Shale's S3 gateway: the S3 HTTP API (s3s over hyper), SigV4, and the PUT/GET data
//! pipelines (`data`). Stateless: everything durable lives in the metadata plane and on
//! data nodes.

pub mod data;
