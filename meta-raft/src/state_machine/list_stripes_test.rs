//! ListStripes: every indexed stripe exactly once, in index order, with its owner, code,
//! length and the placement a ReplacePlacement compares against.

use std::collections::BTreeSet;

use common::cluster::FragmentLocation;
use common::ids::{DiskId, NodeId, StripeId};
use proptest::prelude::*;

use super::multipart_test::{create, part};
use super::test_support::*;
use super::workload::{op_spec, placement_of, Driver};
use super::*;

/// Every stripe, walking pages of `page` stripes; asserts each page's truncation flag.
fn walk(h: &Harness, page: u32) -> Vec<StripeEntry> {
    let mut out: Vec<StripeEntry> = Vec::new();
    let mut after = None;
    loop {
        let p = list_stripes(&h.read(), after, page).expect("list_stripes");
        assert!(p.stripes.len() <= page as usize);
        out.extend(p.stripes.iter().cloned());
        if !p.is_truncated {
            return out;
        }
        assert_eq!(p.stripes.len(), page as usize, "a truncated page is full");
        after = p.stripes.last().map(|s| s.id);
    }
}

fn version_owner(key: &str, version_id: &str, seq: u64) -> StripeOwner {
    StripeOwner::Version {
        bucket: "bk".to_owned(),
        key: key.to_owned(),
        version_id: version_id.to_owned(),
        seq,
    }
}

#[test]
fn an_empty_group_lists_nothing() {
    let h = Harness::new();
    assert_eq!(
        list_stripes(&h.read(), None, 10).unwrap(),
        ListStripesPage::default()
    );
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Unversioned);
    assert_eq!(
        list_stripes(&h.read(), Some(StripeId(5)), 10).unwrap(),
        ListStripesPage::default()
    );
}

#[test]
fn lists_versions_and_parts_with_owner_code_length_and_placement() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Enabled);
    // Log index 2: version "v1" of "k" with stripes 10 and 11.
    h.apply(&Command::PutObject(put("bk", "k", "v1", striped(10, 2))));
    // Log index 3: an inline version (no stripes).
    h.apply(&Command::PutObject(put(
        "bk",
        "small",
        "v2",
        ObjectBody::Inline(b"hi".to_vec()),
    )));
    // Log index 4, 5: an upload and a part of 7 bytes in stripe 20.
    h.apply(&Command::CreateMultipartUpload(create("bk", "m", "u1")));
    assert_eq!(
        h.apply(&Command::RecordPart(part("bk", "m", "u1", 3, 7, 20))),
        Response::PartRecorded
    );

    let all = list_stripes(&h.read(), None, 100).unwrap();
    assert!(!all.is_truncated);
    let mut expected = vec![
        StripeEntry {
            id: StripeId(10),
            owner: version_owner("k", "v1", 2),
            codec: CODEC,
            data_len: 10,
            placement: stripe(10, 10).placement,
        },
        StripeEntry {
            id: StripeId(11),
            owner: version_owner("k", "v1", 2),
            codec: CODEC,
            data_len: 10,
            placement: stripe(11, 10).placement,
        },
        StripeEntry {
            id: StripeId(20),
            owner: StripeOwner::Part {
                upload_id: "u1".to_owned(),
                part_number: 3,
            },
            codec: CODEC,
            data_len: 7,
            placement: stripe(20, 7).placement,
        },
    ];
    expected.sort_by_key(|s| s.id.to_bytes());
    assert_eq!(all.stripes, expected);
    for s in &all.stripes {
        assert_eq!(s.placement, placement_of(&h, s.id));
        assert_eq!(
            stripe_owner(&h.read(), s.id).unwrap(),
            Some(s.owner.clone())
        );
    }

    // Pages of one: the same stripes, each once, in the same order.
    assert_eq!(walk(&h, 1), expected);
    // A limit of 0 is an empty, untruncated page; limits are capped.
    assert_eq!(
        list_stripes(&h.read(), None, 0).unwrap(),
        ListStripesPage::default()
    );
    assert_eq!(
        list_stripes(&h.read(), None, u32::MAX).unwrap().stripes,
        expected
    );
    // Resuming after the last stripe: nothing more.
    let last = expected.last().unwrap().id;
    assert_eq!(
        list_stripes(&h.read(), Some(last), 10).unwrap(),
        ListStripesPage::default()
    );
}

#[test]
fn the_listed_placement_is_what_replace_placement_expects() {
    let mut h = Harness::new();
    h.create_bucket("bk", Versioning::Unversioned);
    h.apply(&Command::PutObject(put("bk", "k", "_", striped(1, 3))));
    let page = list_stripes(&h.read(), None, 10).unwrap();
    let s = page.stripes.iter().find(|s| s.id == StripeId(2)).unwrap();
    let mut new = s.placement.clone();
    new[0] = FragmentLocation {
        node: NodeId(4242),
        disk: DiskId(1),
    };
    let cas = Command::ReplacePlacement(ReplacePlacement {
        stripe: s.id,
        expected: s.placement.clone(),
        new: new.clone(),
    });
    assert_eq!(h.apply(&cas), Response::PlacementReplaced { moved: 1 });
    let after = list_stripes(&h.read(), None, 10).unwrap();
    let s2 = after.stripes.iter().find(|s| s.id == StripeId(2)).unwrap();
    assert_eq!(s2.placement, new);
    // Deleting the object drops its stripes from the listing.
    h.apply(&Command::DeleteObject(delete("bk", "k", None, "_")));
    assert_eq!(walk(&h, 2), Vec::new());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    /// After any workload, a paged walk lists exactly the referenced stripes, once each,
    /// in index order, with the stored placements.
    #[test]
    fn a_paged_walk_lists_every_referenced_stripe_once(
        ops in prop::collection::vec(op_spec(), 1..60),
        page in 1u32..5,
    ) {
        let mut d = Driver::new();
        for op in &ops {
            d.step(op);
        }
        let listed = walk(&d.h, page);
        let keys: Vec<[u8; 16]> = listed.iter().map(|s| s.id.to_bytes()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(&keys, &sorted, "index order, no repeats");
        let referenced: BTreeSet<(StripeId, u8, FragmentLocation)> =
            referenced_fragments(&d.h.read());
        let mut from_listing = BTreeSet::new();
        for s in &listed {
            prop_assert_eq!(s.codec, CODEC);
            prop_assert_eq!(s.placement.len(), 3);
            prop_assert_eq!(&s.placement, &placement_of(&d.h, s.id));
            for (i, loc) in (0u8..).zip(&s.placement) {
                from_listing.insert((s.id, i, *loc));
            }
        }
        prop_assert_eq!(from_listing, referenced);
    }
}
