use std::collections::BTreeSet;

use super::free_loopback_addr;

#[test]
fn loopback_addresses_are_never_handed_out_twice() {
    let mut seen = BTreeSet::new();
    for _ in 0..500 {
        let addr = free_loopback_addr().expect("free loopback address");
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_ne!(addr.port(), 0);
        assert!(seen.insert(addr), "{addr} handed out twice");
    }
}
