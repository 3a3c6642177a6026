//! The `shale` binary.
fn main() {}
