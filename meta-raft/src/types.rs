//! The metadata groups' openraft type config: commands are `state_machine::Command`,
//! responses `state_machine::Response`, nodes are addressed by `BasicNode { addr }`, and
//! the runtime is `ShaleRuntime` (tokio or madsim through `common::env`).

use std::io;

use openraft::EntryPayload;
use redb::WriteTransaction;

use crate::group_host::GroupHost;
use crate::runtime::ShaleRuntime;
use crate::sm_store::{GroupLogic, RedbStateMachine};
use crate::state_machine::{apply, Command, Response};

openraft::declare_raft_types!(
    pub GroupConfig:
        D = Command,
        R = Response,
        AsyncRuntime = ShaleRuntime,
);

/// Applies log entries with the object/root state machine.
pub struct MetaLogic;

impl GroupLogic<GroupConfig> for MetaLogic {
    fn apply(
        txn: &WriteTransaction,
        entry: &<GroupConfig as openraft::RaftTypeConfig>::Entry,
    ) -> io::Result<Response> {
        match &entry.payload {
            EntryPayload::Normal(cmd) => apply(txn, entry.log_id.index, cmd)
                .map_err(|e| io::Error::other(format!("applying {cmd}: {e}"))),
            EntryPayload::Blank | EntryPayload::Membership(_) => Ok(Response::Empty),
        }
    }
}

pub type MetaStateMachine = RedbStateMachine<GroupConfig, MetaLogic>;
pub type MetaRaft = openraft::Raft<GroupConfig, MetaStateMachine>;
pub type MetaGroupHost = GroupHost<GroupConfig, MetaLogic>;
