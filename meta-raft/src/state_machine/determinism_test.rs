//! Determinism: the same command sequence applied to two fresh databases gives the same
//! responses and byte-identical tables.

use proptest::prelude::*;

use super::test_support::*;
use super::workload::{op_spec, Driver};

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn same_commands_same_bytes(ops in prop::collection::vec(op_spec(), 1..60)) {
        let mut a = Driver::new();
        for op in &ops {
            a.step(op);
        }
        let mut b = Harness::new();
        b.check = false;
        b.create_bucket("bk", super::Versioning::Unversioned);
        for (cmd, response) in &a.log {
            prop_assert_eq!(&b.apply(cmd), response, "{}", cmd);
        }
        let (da, db) = (a.h.dump(), b.dump());
        prop_assert_eq!(da, db);
    }
}

#[test]
fn the_dump_tells_different_histories_apart() {
    // Guards the property above against a dump that ignores content.
    let mut a = Harness::new();
    a.create_bucket("bk", super::Versioning::Unversioned);
    let mut b = Harness::new();
    b.create_bucket("bk", super::Versioning::Enabled);
    assert_ne!(a.dump(), b.dump());
}
