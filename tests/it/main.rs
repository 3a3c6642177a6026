//! Shale's integration tests: real `shale` processes on 127.0.0.1, driven over the
//! network by real clients. One test binary (matklad's advice); one module per area.
#![cfg(not(madsim))]

mod admin;
mod bench;
mod datanode;
mod durability;
mod maintain;
mod meta;
mod orphans;
mod repair;
mod s3;
mod s3_chunked;
mod s3_list;
mod s3_multipart;
mod s3_object;
mod s3_resilience;
mod s3_tls;
mod tidy;
