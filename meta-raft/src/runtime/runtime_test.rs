//! openraft-rt's own conformance suite for `AsyncRuntime` implementations, run against
//! `ShaleRuntime` on tokio (and, with `--cfg madsim`, inside madsim).

use openraft::rt::testing::Suite;

use super::ShaleRuntime;

#[test]
fn openraft_runtime_conformance_suite() {
    Suite::<ShaleRuntime>::test_all();
}
