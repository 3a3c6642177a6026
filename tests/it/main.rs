//! Shale's integration tests: real `shale` processes on 127.0.0.1, driven over the
//! network by real clients. One test binary (matklad's advice); one module per area.
#![cfg(not(madsim))]

mod datanode;
mod meta;
mod tidy;
