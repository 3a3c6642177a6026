//! The key encoding: order-preserving, prefix-free, buckets contiguous, prefixes and
//! "after key" as byte ranges.

use proptest::prelude::*;

use super::keys::*;

/// Keys from a tiny alphabet with NUL, 0x01, a multi-byte character and the delimiter,
/// so escapes, prefixes and ties are frequent.
fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["\0", "\u{1}", "a", "/", "é", "\u{ff}"]),
        0..5,
    )
    .prop_map(|parts| parts.concat())
}

fn bucket() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "a-", "ab", "b", "a.b"]).prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn object_keys_sort_like_bucket_then_key(
        b1 in bucket(), k1 in key(), b2 in bucket(), k2 in key()
    ) {
        let (e1, e2) = (object_key(&b1, &k1), object_key(&b2, &k2));
        prop_assert_eq!(e1.cmp(&e2), (&b1, &k1).cmp(&(&b2, &k2)));
        // Prefix-free: a different object's key never extends this one.
        if (&b1, &k1) != (&b2, &k2) {
            prop_assert!(!e2.starts_with(&e1));
        }
        prop_assert_eq!(decode_object_key(&e1, &b1), Some((k1.clone(), e1.len())));
    }

    #[test]
    fn buckets_are_contiguous_ranges(b1 in bucket(), k in key(), b2 in bucket()) {
        let (start, end) = bucket_range(&b2);
        let e = object_key(&b1, &k);
        prop_assert_eq!(start <= e && e < end, b1 == b2);
    }

    #[test]
    fn prefixes_are_ranges(b in bucket(), k in key(), p in key()) {
        let start = key_prefix(&b, &p);
        let end = prefix_successor(&start).unwrap();
        let e = object_key(&b, &k);
        prop_assert_eq!(start <= e && e < end, k.starts_with(&p), "key {:?} prefix {:?}", k, p);
    }

    #[test]
    fn after_object_skips_exactly_the_key_and_its_rows(b in bucket(), k in key(), k2 in key(), seq in any::<u64>()) {
        let after = after_object(&b, &k);
        prop_assert_eq!(object_key(&b, &k2) >= after, k2 > k);
        // Every row of `k` (versions, uploads) sorts below `after`, above the object key.
        let v = version_key(&object_key(&b, &k), seq);
        prop_assert!(v < after && v > object_key(&b, &k));
        prop_assert_eq!(version_seq(&v, object_key(&b, &k).len()), Some(seq));
        // Versions of one key: newest (highest seq) first.
        let ok = object_key(&b, &k);
        if seq < u64::MAX {
            prop_assert!(version_key(&ok, seq + 1) < version_key(&ok, seq));
        }
    }

    #[test]
    fn part_and_gc_keys_sort_numerically(u in key(), n1 in 1u32..=10_000, n2 in 1u32..=10_000,
                                         i1 in any::<u64>(), o1 in any::<u32>(), i2 in any::<u64>(), o2 in any::<u32>()) {
        prop_assert_eq!(part_key(&u, n1).cmp(&part_key(&u, n2)), n1.cmp(&n2));
        prop_assert_eq!(part_number_of(&part_key(&u, n1), &u), Some(n1));
        let (start, end) = parts_range(&u);
        prop_assert!(part_key(&u, n1) >= start && part_key(&u, n1) < end);
        let (a, b) = (super::GcId { log_index: i1, ordinal: o1 }, super::GcId { log_index: i2, ordinal: o2 });
        prop_assert_eq!(gc_key(a).cmp(&gc_key(b)), a.cmp(&b));
        prop_assert_eq!(gc_id_of(&gc_key(a)), Some(a));
    }
}

#[test]
fn encoding_is_as_documented() {
    assert_eq!(object_key("bk", "a\0b"), b"bk\0a\0\xffb\0\0".to_vec());
    assert_eq!(after_object("bk", "a"), b"bk\0a\0\x01".to_vec());
    assert_eq!(bucket_range("bk"), (b"bk\0".to_vec(), b"bk\x01".to_vec()));
    assert_eq!(prefix_successor(b"a\xff\xff"), Some(b"b".to_vec()));
    assert_eq!(prefix_successor(b"\xff"), None);
}
