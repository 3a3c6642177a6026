//! Root-group records: group map bootstrap and routing, map versioning, node
//! registration / heartbeat / state, access keys.

use std::collections::BTreeMap;

use common::cluster::{DiskInfo, DiskState, NodeInfo, NodeState};
use common::ids::{DiskId, GroupId, NodeId, RackId};
use redb::ReadableDatabase;

use super::keys::object_key;
use super::response::{Reason, Response};
use super::root::*;
use super::{apply, Command};

fn db() -> redb::Database {
    redb::Builder::new()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .unwrap()
}

fn run(db: &redb::Database, index: u64, cmd: RootCommand) -> Response {
    let txn = db.begin_write().unwrap();
    let r = apply(&txn, index, &Command::Root(cmd)).unwrap();
    txn.commit().unwrap();
    r
}

fn members() -> BTreeMap<u64, String> {
    (1..=3)
        .map(|i| (i, format!("127.0.0.1:{}", 7200 + i)))
        .collect()
}

#[test]
fn bootstrap_maps_cover_the_key_space_and_route_by_bucket() {
    for n in 1..=BOOTSTRAP_GROUPS_MAX {
        let map = GroupMap::bootstrap(n, &members());
        assert!(map.is_valid(), "n = {n}");
        assert_eq!(map.groups.len(), n as usize);
        // Every bucket's keys land in exactly one group, the same for all its keys.
        for bucket in ["0", "a", "data", "m.x", "zzz", "-x"] {
            let g1 = map.group_for(&object_key(bucket, "")).group;
            let g2 = map.group_for(&object_key(bucket, "some/deep/key")).group;
            assert_eq!(g1, g2, "bucket {bucket} split across groups at n = {n}");
        }
    }
    let map = GroupMap::bootstrap(4, &members());
    let ids: Vec<GroupId> = map.groups.iter().map(|g| g.group).collect();
    assert_eq!(ids, vec![GroupId(1), GroupId(2), GroupId(3), GroupId(4)]);
    assert_ne!(
        map.group_for(&object_key("alpha", "k")).group,
        map.group_for(&object_key("zulu", "k")).group
    );
    let all: Vec<GroupId> = map.groups_overlapping(b"", None).map(|g| g.group).collect();
    assert_eq!(all.len(), 4);
    let one: Vec<GroupId> = map
        .groups_overlapping(&object_key("zulu", ""), Some(&object_key("zulv", "")))
        .map(|g| g.group)
        .collect();
    assert_eq!(one, vec![map.group_for(&object_key("zulu", "")).group]);
}

#[test]
fn group_map_versions_move_forward_by_one() {
    let db = db();
    let mut map = GroupMap::bootstrap(2, &members());
    map.version = 2;
    assert!(matches!(
        run(&db, 1, RootCommand::SetGroupMap(map.clone())),
        Response::Rejected(_)
    ));
    map.version = 1;
    assert_eq!(
        run(&db, 2, RootCommand::SetGroupMap(map.clone())),
        Response::Empty
    );
    assert!(matches!(
        run(&db, 3, RootCommand::SetGroupMap(map.clone())),
        Response::Rejected(_)
    ));
    map.version = 2;
    assert_eq!(
        run(&db, 4, RootCommand::SetGroupMap(map.clone())),
        Response::Empty
    );
    let mut broken = map.clone();
    broken.version = 3;
    broken.groups[0].start = b"x".to_vec();
    assert!(matches!(
        run(&db, 5, RootCommand::SetGroupMap(broken)),
        Response::Rejected(_)
    ));
    let txn = db.begin_read().unwrap();
    assert_eq!(group_map(&txn).unwrap(), Some(map));
}

#[test]
fn group_members_follow_membership_changes() {
    let db = db();
    let set = |group: u64, members: BTreeMap<u64, String>| RootCommand::SetGroupMembers {
        group: GroupId(group),
        members,
    };
    assert!(matches!(
        run(&db, 1, set(1, members())),
        Response::Rejected(Reason::InvalidArgument(_))
    ));
    let map = GroupMap::bootstrap(2, &members());
    assert_eq!(
        run(&db, 2, RootCommand::SetGroupMap(map.clone())),
        Response::Empty
    );
    // Unchanged members: no new version.
    assert_eq!(run(&db, 3, set(2, members())), Response::Empty);
    let mut four = members();
    four.insert(4, "127.0.0.1:7204".into());
    assert_eq!(run(&db, 4, set(2, four.clone())), Response::Empty);
    for bad in [set(9, four.clone()), set(1, BTreeMap::new())] {
        assert!(matches!(
            run(&db, 5, bad),
            Response::Rejected(Reason::InvalidArgument(_))
        ));
    }
    let txn = db.begin_read().unwrap();
    let now = group_map(&txn).unwrap().unwrap();
    assert_eq!(now.version, 2);
    assert_eq!(now.groups[0].members, members());
    assert_eq!(now.groups[1].members, four);
}

fn node(id: u64, rack: &str) -> NodeInfo {
    NodeInfo {
        id: NodeId(id),
        rack: RackId(rack.into()),
        addr: format!("127.0.0.1:{}", 7100 + id),
        state: NodeState::Up,
        disks: vec![DiskInfo {
            id: DiskId(0),
            state: DiskState::Healthy,
            capacity_bytes: 1000,
            used_bytes: 0,
        }],
    }
}

#[test]
fn nodes_register_heartbeat_and_change_state() {
    let db = db();
    assert_eq!(
        run(
            &db,
            1,
            RootCommand::RegisterNode {
                info: node(1, "r1"),
                at_ms: 10
            }
        ),
        Response::Empty
    );
    run(
        &db,
        2,
        RootCommand::RegisterNode {
            info: node(2, "r2"),
            at_ms: 10,
        },
    );
    let disks = vec![DiskInfo {
        id: DiskId(0),
        state: DiskState::Healthy,
        capacity_bytes: 1000,
        used_bytes: 400,
    }];
    run(
        &db,
        3,
        RootCommand::Heartbeat {
            node: NodeId(1),
            at_ms: 50,
            disks: disks.clone(),
        },
    );
    // An older heartbeat never moves time backwards.
    run(
        &db,
        4,
        RootCommand::Heartbeat {
            node: NodeId(1),
            at_ms: 30,
            disks: disks.clone(),
        },
    );
    let unknown = run(
        &db,
        5,
        RootCommand::Heartbeat {
            node: NodeId(9),
            at_ms: 60,
            disks: vec![],
        },
    );
    assert!(matches!(
        unknown,
        Response::Rejected(Reason::InvalidArgument(_))
    ));
    run(
        &db,
        6,
        RootCommand::SetNodeState {
            node: NodeId(2),
            state: NodeState::Down,
            reason: "silent 30 s".into(),
            at_ms: 65,
            expect: None,
        },
    );
    // Re-registering keeps the state the cluster decided.
    run(
        &db,
        7,
        RootCommand::RegisterNode {
            info: node(2, "r2"),
            at_ms: 70,
        },
    );
    let txn = db.begin_read().unwrap();
    let recs = nodes(&txn).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].last_heartbeat_ms, 50);
    assert_eq!(recs[0].info.disks[0].used_bytes, 400);
    assert_eq!(recs[1].info.state, NodeState::Down);
    assert_eq!(recs[1].state_reason, "silent 30 s");
    let map = cluster_map(&txn).unwrap();
    assert_eq!(map.nodes.len(), 2);
}

#[test]
fn node_state_compare_and_set_records_reason_and_time() {
    let db = db();
    run(
        &db,
        1,
        RootCommand::RegisterNode {
            info: node(1, "r1"),
            at_ms: 10,
        },
    );
    let set = |state, expect, at_ms| RootCommand::SetNodeState {
        node: NodeId(1),
        state,
        reason: format!("to {state}"),
        at_ms,
        expect,
    };
    assert_eq!(
        run(&db, 2, set(NodeState::Down, Some(NodeState::Up), 20)),
        Response::Empty
    );
    // The expectation no longer holds: rejected, nothing written.
    assert!(matches!(
        run(&db, 3, set(NodeState::Dead, Some(NodeState::Up), 30)),
        Response::Rejected(Reason::InvalidArgument(_))
    ));
    let txn = db.begin_read().unwrap();
    let r = &nodes(&txn).unwrap()[0];
    assert_eq!(r.info.state, NodeState::Down);
    assert_eq!(
        (r.state_reason.as_str(), r.state_changed_ms),
        ("to down", 20)
    );
    assert_eq!(r.heartbeats, 1);
}

#[test]
fn a_failed_disk_stays_failed_across_heartbeats_until_marked_healthy() {
    let db = db();
    run(
        &db,
        1,
        RootCommand::RegisterNode {
            info: node(1, "r1"),
            at_ms: 10,
        },
    );
    let disk = |state| RootCommand::SetDiskState {
        node: NodeId(1),
        disk: DiskId(0),
        state,
        reason: "smart errors".into(),
        at_ms: 15,
    };
    assert_eq!(run(&db, 2, disk(DiskState::Failed)), Response::Empty);
    let healthy = vec![DiskInfo {
        id: DiskId(0),
        state: DiskState::Healthy,
        capacity_bytes: 1000,
        used_bytes: 1,
    }];
    run(
        &db,
        3,
        RootCommand::Heartbeat {
            node: NodeId(1),
            at_ms: 20,
            disks: healthy.clone(),
        },
    );
    {
        let txn = db.begin_read().unwrap();
        let r = &nodes(&txn).unwrap()[0];
        assert_eq!(r.info.disks[0].state, DiskState::Failed);
        assert_eq!(r.failed_disks[&DiskId(0)].reason, "smart errors");
        assert_eq!(r.heartbeats, 2);
    }
    assert!(matches!(
        run(
            &db,
            4,
            RootCommand::SetDiskState {
                node: NodeId(1),
                disk: DiskId(7),
                state: DiskState::Failed,
                reason: String::new(),
                at_ms: 0,
            }
        ),
        Response::Rejected(_)
    ));
    assert_eq!(run(&db, 5, disk(DiskState::Healthy)), Response::Empty);
    let txn = db.begin_read().unwrap();
    let r = &nodes(&txn).unwrap()[0];
    assert_eq!(r.info.disks[0].state, DiskState::Healthy);
    assert!(r.failed_disks.is_empty());
}

#[test]
fn access_keys_are_unique_and_deletable() {
    let db = db();
    let key = AccessKey {
        id: "AKID1".into(),
        secret: "s3cr3t".into(),
        user: "alice".into(),
        created_ms: 1,
    };
    assert_eq!(
        run(&db, 1, RootCommand::CreateAccessKey(key.clone())),
        Response::Empty
    );
    assert!(matches!(
        run(&db, 2, RootCommand::CreateAccessKey(key.clone())),
        Response::Rejected(_)
    ));
    let empty = AccessKey {
        secret: String::new(),
        ..key.clone()
    };
    assert!(matches!(
        run(&db, 3, RootCommand::CreateAccessKey(empty)),
        Response::Rejected(_)
    ));
    {
        let txn = db.begin_read().unwrap();
        assert_eq!(access_key(&txn, "AKID1").unwrap(), Some(key));
        assert_eq!(access_keys(&txn).unwrap().len(), 1);
        assert_eq!(access_key(&txn, "nope").unwrap(), None);
    }
    assert_eq!(
        run(&db, 4, RootCommand::DeleteAccessKey { id: "AKID1".into() }),
        Response::Empty
    );
    assert!(matches!(
        run(&db, 5, RootCommand::DeleteAccessKey { id: "AKID1".into() }),
        Response::Rejected(_)
    ));
}

#[test]
fn only_a_draining_or_dead_node_can_be_removed() {
    let db = db();
    for (i, id) in [1u64, 2].into_iter().enumerate() {
        run(
            &db,
            1 + i as u64,
            RootCommand::RegisterNode {
                info: node(id, "r1"),
                at_ms: 10,
            },
        );
    }
    let remove = |n| RootCommand::RemoveNode { node: NodeId(n) };
    // Up: refused, with what to do.
    match run(&db, 3, remove(1)) {
        Response::Rejected(Reason::InvalidArgument(why)) => {
            assert!(why.contains("drain it"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(run(&db, 4, remove(9)), Response::Rejected(_)));
    for (i, state) in [NodeState::Draining, NodeState::Dead]
        .into_iter()
        .enumerate()
    {
        let n = 1 + i as u64;
        run(
            &db,
            5 + i as u64,
            RootCommand::SetNodeState {
                node: NodeId(n),
                state,
                reason: "decommission".into(),
                at_ms: 20,
                expect: None,
            },
        );
        assert_eq!(run(&db, 7 + i as u64, remove(n)), Response::Empty);
    }
    let txn = db.begin_read().unwrap();
    assert!(nodes(&txn).unwrap().is_empty());
}
