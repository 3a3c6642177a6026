//! Shale S3 gateway (issue 4). Not built yet.
