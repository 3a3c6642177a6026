//! `MetaClient`: the metadata plane as gateways and admin tools see it.
//!
//! # Routing: one hop
//! The client caches the group map (fetched from the root group, GroupId 0) and the last
//! known leader of every group, and sends each call straight to that leader. A
//! `NOT_LEADER` answer names the leader when the node knows it; the client follows the
//! hint at once (at most [`MetaClientConfig::max_redirects`] times per call). Without a
//! hint, or when a node is unreachable, it tries the group's other members (the map's
//! members; for the root group the seed addresses), sleeping a short, doubling backoff
//! (through `common::env::Clock`) once every member has been tried, until
//! [`MetaClientConfig::retry_budget`] is spent: then the call fails with
//! [`MetaClientError::Unavailable`], which a gateway turns into 503. `WRONG_GROUP`
//! refreshes the group map and routes again.
//!
//! Writes that were sent but whose answer was lost (timeout, connection reset, a leader
//! change that discarded the entry) are retried: every command carries its own ids and
//! times, and the state machine recognises a retried command (see
//! `state_machine::command`). Retries that cannot be recognised are listed under
//! "Open issues" below.
//!
//! # Errors
//! [`MetaClientError::Rejected`] is an S3 business outcome (a [`Reason`]);
//! [`MetaClientError::Unavailable`] means "try again later"; `Internal`, `Protocol` and
//! `WrongCluster` are faults (storage failure on a meta node, a malformed message — a bug
//! on one side — or a misconfigured client).
//!
//! # Buckets across groups
//! The root group is the authority on bucket names and owners; every object group whose
//! range can hold the bucket's keys keeps its own copy of the bucket record (it decides
//! emptiness and versioning for its part of the bucket).
//! - [`MetaClient::create_bucket`]: create in the root group (name uniqueness and
//!   ownership), then in each object group; `BucketAlreadyOwnedByYou` from an object group
//!   counts as success, so a retried create completes a half-created bucket. When the root
//!   answers `BucketAlreadyOwnedByYou` the client still makes sure every object group has
//!   the bucket (repairing a create that died half-way), then reports
//!   `BucketAlreadyOwnedByYou`.
//! - [`MetaClient::delete_bucket`]: first a read-only check that no group holds a
//!   version or delete marker (`BucketNotEmpty` without side effects); then delete in each
//!   object group in key order (each refuses if it is not empty); if one refuses, re-create
//!   the bucket in the groups already deleted and report `BucketNotEmpty`; finally delete
//!   in the root. A group that no longer has the bucket counts as deleted, so a retried
//!   delete completes a half-deleted bucket.
//! - [`MetaClient::set_bucket_versioning`]: the root, then each object group.
//!
//! Race windows (these are not atomic across groups):
//! - While a create is between the root and the object groups, the bucket exists (HEAD,
//!   ListBuckets, name taken) but a PUT to a group that does not have it yet gets
//!   `NoSuchBucket`. If the creating client dies there, those groups stay without the
//!   bucket until its owner retries the create.
//! - During a delete, a PUT racing with it either lands before its group's delete (that
//!   group refuses, the delete rolls back and reports `BucketNotEmpty`) or gets
//!   `NoSuchBucket`. During a rollback, PUTs to the groups being restored get
//!   `NoSuchBucket` for a moment. Deleting a group's copy aborts that group's multipart
//!   uploads in progress; a rollback does not bring them back.
//! - If the deleting client dies after some object groups but before the root, the
//!   bucket still exists by name but is gone from those groups; retrying the delete (or
//!   the owner's create) repairs it.
//! - A create racing with a delete of the same name can leave an object-group copy with
//!   no root record (the create's object-group step runs after the delete's root step);
//!   a later create of that name by another owner then fails in that group
//!   (`MetaClientError::Internal`). Fencing with a per-bucket generation in the root
//!   record would close this; it is not built.
//! - Versioning changes reach the groups one after another: for a moment some groups of
//!   a multi-group bucket still apply the old state.
//!
//! # Listings across groups
//! ListObjects, ListObjectVersions and ListMultipartUploads walk the groups overlapping
//! the listing's key range in key order, asking each for at most the entries still
//! missing and concatenating pages until `max_keys` is filled. A common prefix that
//! straddles a group boundary is reported by both groups; the second report is dropped.
//! The resume position (`next`, or the key/version/upload markers) is always exact: the
//! last key returned, or for a trailing common prefix a key past every key under it — the
//! greatest such key when a group reported it, otherwise the prefix followed by U+10FFFF
//! up to beyond the 1024-byte key limit (a string greater than every possible key under
//! the prefix and smaller than every key after it). When a page fills up exactly at the
//! end of a group, the client probes the next groups (one entry each) so that
//! `is_truncated` is true only when something follows.
//!
//! # Open issues
//! - A retried root `CreateBucket` answers `BucketAlreadyOwnedByYou`; a retried
//!   `CreateAccessKey` answers "exists". (A retried `CompleteMultipartUpload` answers
//!   like the first attempt while the version it made exists: the state machine
//!   remembers completed uploads.)
//! - The group map is cached until a `WRONG_GROUP` answer; group splits must bump the map
//!   version and fence (not built: groups are fixed at bootstrap).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{ClusterMap, DiskInfo, NodeInfo, NodeState};
use common::env::Clock;
use common::ids::{GroupId, NodeId, StripeId};
use futures::future::BoxFuture;
use futures::FutureExt;
use proto::convert::node_state_to_wire;
use proto::meta as pb;
use proto::meta::meta_service_client::MetaServiceClient;
use proto::meta::MetaErrorCode;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::group_status::GroupStatus;
use crate::maintain_report::MaintainReport;
use crate::service::{listing_range, CLUSTER_ID_KEY, META_MESSAGE_BYTES_MAX, ROOT_GROUP};
use crate::state_machine::{
    keys, AbortMultipartUpload, AccessKey, BucketRecord, CompleteMultipartUpload,
    CreateMultipartUpload, CurrentVersion, DeleteObject, GcEntry, GcId, GroupMap, ListObjectsPage,
    ListObjectsParams, ListPartsPage, ListUploadsPage, ListUploadsParams, ListVersionsPage,
    ListVersionsParams, MultipartUpload, NodeRecord, ObjectEntry, PartRecord, PutObject, Reason,
    RecordPart, ReplacePlacement, VersionEntry, VersionRecord, Versioning, MAX_KEY_LEN,
    MAX_LIST_KEYS,
};
use crate::state_machine::{ListStripesPage, StripeEntry};
use crate::wire;

/// Retry and timeout policy.
#[derive(Clone, Debug)]
pub struct MetaClientConfig {
    /// `NOT_LEADER` hints followed per call.
    pub max_redirects: u32,
    /// Time spent retrying an unavailable group (unreachable nodes, no leader, no quorum)
    /// before a call fails with `Unavailable`.
    pub retry_budget: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// One RPC (above the service's own write and read-barrier timeouts).
    pub rpc_timeout: Duration,
    /// Hard cap on RPCs per call, whatever the budget says.
    pub max_attempts: u32,
}

impl Default for MetaClientConfig {
    fn default() -> Self {
        Self {
            max_redirects: 5,
            retry_budget: Duration::from_secs(3),
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(250),
            rpc_timeout: Duration::from_secs(10),
            max_attempts: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetaClientError {
    /// An S3 business outcome: the operation had no effect.
    #[error("rejected: {0}")]
    Rejected(Reason),
    /// No leader answered within the retry budget (unreachable nodes, election, no
    /// quorum). Retry after `retry_after` (a gateway answers 503 with Retry-After).
    #[error("metadata service unavailable: {detail} (retry after {retry_after:?})")]
    Unavailable {
        retry_after: Duration,
        detail: String,
    },
    /// The group map changed under a multi-group operation more often than it retried.
    #[error("the group map kept changing: {0}")]
    StaleGroupMap(String),
    /// A meta node failed (storage error, unreadable record) or the cluster's records
    /// disagree (see the race windows in the module docs).
    #[error("metadata service internal error: {0}")]
    Internal(String),
    /// A message one side could not understand: a bug in the client or the server.
    #[error("metadata protocol error: {0}")]
    Protocol(String),
    /// The meta nodes belong to another cluster.
    #[error("wrong cluster: {0}")]
    WrongCluster(String),
    #[error("invalid metadata client configuration: {0}")]
    Config(String),
}

type Result<T, E = MetaClientError> = std::result::Result<T, E>;

fn protocol(e: impl std::fmt::Display) -> MetaClientError {
    MetaClientError::Protocol(e.to_string())
}

/// A committed version (PutObject, CompleteMultipartUpload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// `"null"` in unversioned and suspended buckets.
    pub version_id: String,
    /// Commit order.
    pub seq: u64,
    pub etag: String,
    pub size: u64,
}

/// What DeleteObject did (see `state_machine::Response::Deleted`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

/// Counters, for tests and `shale admin status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// RPCs sent.
    pub rpcs: u64,
    /// `NOT_LEADER` answers received.
    pub not_leader: u64,
    /// RPCs that failed in transport (unreachable node, timeout).
    pub unreachable: u64,
    /// Group map fetches.
    pub map_fetches: u64,
}

#[derive(Default)]
struct Counters {
    rpcs: AtomicU64,
    not_leader: AtomicU64,
    unreachable: AtomicU64,
    map_fetches: AtomicU64,
}

/// Where a call goes.
#[derive(Clone, Debug)]
enum Route {
    Root,
    /// The group owning this encoded object key.
    Key(Vec<u8>),
    /// This group; a `WRONG_GROUP` answer is [`MetaClientError::StaleGroupMap`] (the
    /// caller chose the group from the map and must start over).
    Group(GroupId),
}

#[derive(Default)]
struct Cache {
    map: Option<Arc<GroupMap>>,
    leaders: BTreeMap<GroupId, String>,
    channels: BTreeMap<String, Channel>,
}

struct Inner {
    seeds: Vec<String>,
    cluster_id: MetadataValue<Ascii>,
    config: MetaClientConfig,
    clock: Clock,
    cache: Mutex<Cache>,
    counters: Counters,
}

/// A client of the metadata plane. Cheap to clone (clones share caches).
#[derive(Clone)]
pub struct MetaClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MetaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaClient")
            .field("seeds", &self.inner.seeds)
            .finish_non_exhaustive()
    }
}

/// One group's page of a listing, merged into key order.
struct GroupPage<I, C> {
    items: Vec<Entry<I>>,
    truncated: bool,
    next: Option<C>,
}

enum Entry<I> {
    Item(I),
    Prefix(String),
}

/// Entries (sorted by `key`) and common prefixes (sorted) merged into one key-ordered
/// sequence. An entry never lies under a reported prefix, so comparing the entry's key
/// with the prefix string orders them.
fn merge<I>(items: Vec<I>, key: impl Fn(&I) -> &str, prefixes: Vec<String>) -> Vec<Entry<I>> {
    let mut out = Vec::with_capacity(items.len() + prefixes.len());
    let mut prefixes = prefixes.into_iter().peekable();
    for item in items {
        while let Some(p) = prefixes.next_if(|p| p.as_str() < key(&item)) {
            out.push(Entry::Prefix(p));
        }
        out.push(Entry::Item(item));
    }
    out.extend(prefixes.map(Entry::Prefix));
    out
}

/// A key greater than every key that starts with `prefix` (keys are at most
/// `MAX_KEY_LEN` bytes) and smaller than every other key greater than `prefix`.
pub fn past_prefix(prefix: &str) -> String {
    let mut s = prefix.to_owned();
    while s.len() <= MAX_KEY_LEN {
        s.push(char::MAX);
    }
    s
}

/// Cursor of a version or upload listing: key marker and version / upload id marker.
type Markers = (Option<String>, Option<String>);

impl MetaClient {
    /// Connects to the meta cluster through `seeds` (addresses of meta nodes, `host:port`)
    /// and fetches the group map.
    pub async fn connect(seeds: Vec<String>, cluster_id: impl Into<String>) -> Result<Self> {
        Self::connect_with(seeds, cluster_id, MetaClientConfig::default()).await
    }

    pub async fn connect_with(
        seeds: Vec<String>,
        cluster_id: impl Into<String>,
        config: MetaClientConfig,
    ) -> Result<Self> {
        if seeds.is_empty() {
            return Err(MetaClientError::Config("no seed addresses".into()));
        }
        let cluster_id: String = cluster_id.into();
        let cluster_id = cluster_id
            .parse()
            .map_err(|_| MetaClientError::Config(format!("invalid cluster id {cluster_id:?}")))?;
        let client = MetaClient {
            inner: Arc::new(Inner {
                seeds,
                cluster_id,
                config,
                clock: Clock::new(),
                cache: Mutex::new(Cache::default()),
                counters: Counters::default(),
            }),
        };
        client.refresh_group_map().await?;
        Ok(client)
    }

    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            rpcs: c.rpcs.load(Ordering::Relaxed),
            not_leader: c.not_leader.load(Ordering::Relaxed),
            unreachable: c.unreachable.load(Ordering::Relaxed),
            map_fetches: c.map_fetches.load(Ordering::Relaxed),
        }
    }

    /// The address this client believes leads `group`.
    pub fn cached_leader(&self, group: GroupId) -> Option<String> {
        self.cache().leaders.get(&group).cloned()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn channel(&self, addr: &str) -> Result<Channel> {
        let mut cache = self.cache();
        if let Some(c) = cache.channels.get(addr) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| MetaClientError::Config(format!("bad meta node address {addr:?}: {e}")))?;
        let channel = endpoint.connect_lazy();
        cache.channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    fn set_leader(&self, group: GroupId, addr: &str) {
        self.cache().leaders.insert(group, addr.to_owned());
    }

    fn forget_leader(&self, group: GroupId, addr: &str) {
        let mut cache = self.cache();
        if cache.leaders.get(&group).is_some_and(|a| a == addr) {
            cache.leaders.remove(&group);
        }
    }

    /// The cached group map (fetched on first use).
    pub async fn group_map(&self) -> Result<Arc<GroupMap>> {
        let cached = self.cache().map.clone();
        match cached {
            Some(m) => Ok(m),
            None => self.refresh_group_map().await,
        }
    }

    /// Fetches the group map from the root group (linearizable) and caches it.
    pub fn refresh_group_map(&self) -> BoxFuture<'_, Result<Arc<GroupMap>>> {
        async move {
            self.inner
                .counters
                .map_fetches
                .fetch_add(1, Ordering::Relaxed);
            let resp = self
                .call(
                    &Route::Root,
                    |_| pb::GetGroupMapRequest {},
                    |mut c, r| async move { c.get_group_map(r).await },
                )
                .await?;
            let wire_map = resp
                .map
                .ok_or_else(|| protocol("GetGroupMap answered without a map"))?;
            let map = Arc::new(GroupMap::try_from(&wire_map).map_err(protocol)?);
            let mut cache = self.cache();
            // Never go back to an older map (answers may arrive out of order).
            if cache.map.as_ref().is_none_or(|m| m.version <= map.version) {
                cache.map = Some(Arc::clone(&map));
            }
            Ok(cache.map.clone().unwrap_or(map))
        }
        .boxed()
    }

    /// The object groups, in key order.
    pub async fn object_groups(&self) -> Result<Vec<GroupId>> {
        Ok(self
            .group_map()
            .await?
            .groups
            .iter()
            .map(|g| g.group)
            .collect())
    }

    /// The group a route resolves to, and the addresses of its members.
    async fn resolve(&self, route: &Route) -> Result<(GroupId, Vec<String>)> {
        let group = match route {
            Route::Root => return Ok((ROOT_GROUP, self.inner.seeds.clone())),
            Route::Group(g) if *g == ROOT_GROUP => {
                return Ok((ROOT_GROUP, self.inner.seeds.clone()))
            }
            Route::Group(g) => {
                let map = self.group_map().await?;
                map.group(*g).cloned().ok_or_else(|| {
                    MetaClientError::StaleGroupMap(format!("no group {g} in the map"))
                })?
            }
            Route::Key(ok) => self.group_map().await?.group_for(ok).clone(),
        };
        let members = group.members.values().cloned().collect::<Vec<_>>();
        if members.is_empty() {
            return Err(MetaClientError::Internal(format!(
                "group {} has no members in the group map",
                group.group
            )));
        }
        Ok((group.group, members))
    }

    /// Sends one logical call: to the cached leader of the routed group, following
    /// `NOT_LEADER` hints, trying other members when a node is unreachable, refreshing the
    /// map on `WRONG_GROUP`, within the retry budget.
    async fn call<M, T, S, Fut>(
        &self,
        route: &Route,
        build: impl Fn(GroupId) -> M,
        send: S,
    ) -> Result<T>
    where
        S: Fn(MetaServiceClient<Channel>, Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let cfg = &self.inner.config;
        let clock = &self.inner.clock;
        let started = clock.now();
        let mut backoff = cfg.backoff_initial;
        let mut redirects = 0u32;
        let mut tried: BTreeSet<String> = BTreeSet::new();
        let mut last = String::from("no attempt made");
        let mut retry_after = Duration::from_secs(1);
        for _ in 0..cfg.max_attempts {
            if clock.now().duration_since(started) > cfg.retry_budget {
                break;
            }
            let (group, members) = self.resolve(route).await?;
            let cached = self.cached_leader(group).filter(|a| !tried.contains(a));
            let addr =
                match cached.or_else(|| members.iter().find(|m| !tried.contains(*m)).cloned()) {
                    Some(a) => a,
                    None => {
                        // Every member was tried: wait, then go round again.
                        tried.clear();
                        clock.sleep(backoff).await;
                        backoff = (backoff * 2).min(cfg.backoff_max);
                        continue;
                    }
                };
            let client = MetaServiceClient::new(self.channel(&addr)?)
                .max_decoding_message_size(META_MESSAGE_BYTES_MAX)
                .max_encoding_message_size(META_MESSAGE_BYTES_MAX);
            let mut req = Request::new(build(group));
            req.metadata_mut()
                .insert(CLUSTER_ID_KEY, self.inner.cluster_id.clone());
            self.inner.counters.rpcs.fetch_add(1, Ordering::Relaxed);
            let status = match clock
                .timeout(cfg.rpc_timeout, Box::pin(send(client, req)))
                .await
            {
                Ok(Ok(resp)) => {
                    self.set_leader(group, &addr);
                    return Ok(resp.into_inner());
                }
                Ok(Err(status)) => status,
                Err(e) => Status::deadline_exceeded(e.to_string()),
            };
            let Some(err) = proto::meta_error_of(&status) else {
                // Transport failure: the node is down, restarting or unreachable.
                self.inner
                    .counters
                    .unreachable
                    .fetch_add(1, Ordering::Relaxed);
                last = format!("group {group} at {addr}: {status}");
                self.forget_leader(group, &addr);
                tried.insert(addr);
                continue;
            };
            let code = MetaErrorCode::try_from(err.code).unwrap_or(MetaErrorCode::Unspecified);
            match code {
                MetaErrorCode::NotLeader => {
                    self.inner
                        .counters
                        .not_leader
                        .fetch_add(1, Ordering::Relaxed);
                    last = format!("group {group}: {}", err.message);
                    self.forget_leader(group, &addr);
                    tried.insert(addr.clone());
                    let hint = Some(err.leader_addr).filter(|h| !h.is_empty() && *h != addr);
                    match hint {
                        Some(h) if redirects < cfg.max_redirects && !tried.contains(&h) => {
                            redirects += 1;
                            self.set_leader(group, &h);
                        }
                        _ => {}
                    }
                }
                MetaErrorCode::WrongGroup => {
                    last = format!("group {group}: {}", err.message);
                    self.refresh_group_map().await?;
                    if let Route::Group(_) = route {
                        return Err(MetaClientError::StaleGroupMap(last));
                    }
                }
                MetaErrorCode::NoQuorum | MetaErrorCode::Unavailable => {
                    last = format!("group {group} at {addr}: {}", err.message);
                    if err.retry_after_ms > 0 {
                        retry_after = Duration::from_millis(err.retry_after_ms);
                    }
                    if code == MetaErrorCode::Unavailable {
                        // This node cannot serve (not ready, shutting down): try others.
                        self.forget_leader(group, &addr);
                        tried.insert(addr);
                    } else {
                        clock.sleep(backoff).await;
                        backoff = (backoff * 2).min(cfg.backoff_max);
                    }
                }
                MetaErrorCode::WrongCluster => {
                    return Err(MetaClientError::WrongCluster(err.message))
                }
                MetaErrorCode::Internal => {
                    return Err(MetaClientError::Internal(format!(
                        "group {group} at {addr}: {}",
                        err.message
                    )))
                }
                MetaErrorCode::Malformed | MetaErrorCode::Unspecified => {
                    return Err(MetaClientError::Protocol(format!(
                        "group {group} at {addr}: {}",
                        err.message
                    )))
                }
                _ => {
                    return match wire::reason_from_error(&err) {
                        Ok(Some(reason)) => Err(MetaClientError::Rejected(reason)),
                        Ok(None) => Err(protocol(format!("unexpected error code {}", err.code))),
                        Err(e) => Err(protocol(e)),
                    }
                }
            }
        }
        Err(MetaClientError::Unavailable {
            retry_after,
            detail: last,
        })
    }

    // ---- buckets ----

    /// Groups whose range can hold keys of `bucket`, in key order.
    async fn bucket_groups(&self, bucket: &str) -> Result<Vec<GroupId>> {
        let map = self.group_map().await?;
        let (start, end) = keys::bucket_range(bucket);
        Ok(map
            .groups_overlapping(&start, Some(&end))
            .map(|g| g.group)
            .collect())
    }

    async fn create_bucket_in(&self, group: GroupId, b: &BucketRecord) -> Result<()> {
        self.call(
            &Route::Group(group),
            |g| pb::CreateBucketRequest {
                group_id: g.0,
                name: b.name.clone(),
                owner: b.owner.clone(),
                created_ms: b.created_ms,
                versioning: wire::versioning_to_wire(b.versioning),
            },
            |mut c, r| async move { c.create_bucket(r).await },
        )
        .await
        .map(drop)
    }

    async fn delete_bucket_in(&self, group: GroupId, name: &str) -> Result<()> {
        self.call(
            &Route::Group(group),
            |g| pb::DeleteBucketRequest {
                group_id: g.0,
                name: name.to_owned(),
            },
            |mut c, r| async move { c.delete_bucket(r).await },
        )
        .await
        .map(drop)
    }

    /// Runs `op` on every object group of `bucket`, starting over (bounded) when the
    /// group map changes underneath.
    async fn in_bucket_groups<'a, F>(&'a self, bucket: &str, op: F) -> Result<()>
    where
        F: Fn(GroupId) -> BoxFuture<'a, Result<()>>,
    {
        let mut last = String::new();
        for _ in 0..3 {
            let mut stale = false;
            for g in self.bucket_groups(bucket).await? {
                match op(g).await {
                    Ok(()) => {}
                    Err(MetaClientError::StaleGroupMap(m)) => {
                        last = m;
                        stale = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !stale {
                return Ok(());
            }
        }
        Err(MetaClientError::StaleGroupMap(last))
    }

    /// S3 CreateBucket (see the module docs for the multi-group protocol).
    pub async fn create_bucket(
        &self,
        name: &str,
        owner: &str,
        created_ms: u64,
        versioning: Versioning,
    ) -> Result<()> {
        let wanted = BucketRecord {
            name: name.to_owned(),
            owner: owner.to_owned(),
            created_ms,
            versioning,
        };
        let (record, already) = match self.create_bucket_in(ROOT_GROUP, &wanted).await {
            Ok(()) => (wanted, false),
            Err(MetaClientError::Rejected(Reason::BucketAlreadyOwnedByYou)) => {
                (self.get_bucket(name).await?, true)
            }
            Err(e) => return Err(e),
        };
        let record = &record;
        self.in_bucket_groups(name, |g| {
            async move {
                match self.create_bucket_in(g, record).await {
                    Ok(()) | Err(MetaClientError::Rejected(Reason::BucketAlreadyOwnedByYou)) => {
                        Ok(())
                    }
                    Err(MetaClientError::Rejected(Reason::BucketAlreadyExists)) => {
                        Err(MetaClientError::Internal(format!(
                            "object group {g} holds a bucket {name:?} of another owner"
                        )))
                    }
                    Err(e) => Err(e),
                }
            }
            .boxed()
        })
        .await?;
        if already {
            return Err(MetaClientError::Rejected(Reason::BucketAlreadyOwnedByYou));
        }
        Ok(())
    }

    /// S3 DeleteBucket: only if no group holds a version or delete marker of it (see the
    /// module docs for the multi-group protocol and its race windows).
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let record = self.get_bucket(name).await?;
        let mut last = String::new();
        'restart: for _ in 0..3 {
            let groups = self.bucket_groups(name).await?;
            // Read-only emptiness check first: a non-empty bucket is refused without
            // touching any group.
            for &g in &groups {
                let params = ListVersionsParams {
                    max_keys: 1,
                    ..ListVersionsParams::default()
                };
                match self.list_versions_in(g, name, &params).await {
                    Ok(page) if !page.items.is_empty() => {
                        return Err(MetaClientError::Rejected(Reason::BucketNotEmpty))
                    }
                    Ok(_) | Err(MetaClientError::Rejected(Reason::NoSuchBucket)) => {}
                    Err(MetaClientError::StaleGroupMap(m)) => {
                        last = m;
                        continue 'restart;
                    }
                    Err(e) => return Err(e),
                }
            }
            match self.delete_in_groups(name, &groups, &record).await {
                Ok(()) => {}
                Err(MetaClientError::StaleGroupMap(m)) => {
                    last = m;
                    continue 'restart;
                }
                Err(e) => return Err(e),
            }
            return match self.delete_bucket_in(ROOT_GROUP, name).await {
                Ok(()) | Err(MetaClientError::Rejected(Reason::NoSuchBucket)) => Ok(()),
                Err(e) => Err(e),
            };
        }
        Err(MetaClientError::StaleGroupMap(last))
    }

    /// Deletes the bucket's copy in `groups`, in order; if one refuses (not empty) or
    /// fails, re-creates it in the groups already deleted and returns that error.
    pub(crate) async fn delete_in_groups(
        &self,
        name: &str,
        groups: &[GroupId],
        record: &BucketRecord,
    ) -> Result<()> {
        let mut deleted = Vec::new();
        for &g in groups {
            match self.delete_bucket_in(g, name).await {
                Ok(()) | Err(MetaClientError::Rejected(Reason::NoSuchBucket)) => deleted.push(g),
                Err(e) => {
                    self.restore_bucket(&deleted, record).await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Rollback of a refused delete: re-create the bucket where it was deleted. Best
    /// effort; a failure leaves a half-deleted bucket that a retried delete completes.
    async fn restore_bucket(&self, groups: &[GroupId], record: &BucketRecord) {
        for &g in groups {
            match self.create_bucket_in(g, record).await {
                Ok(()) | Err(MetaClientError::Rejected(Reason::BucketAlreadyOwnedByYou)) => {}
                Err(e) => tracing::warn!(
                    bucket = %record.name, group = %g, error = %e,
                    "could not restore the bucket after a refused delete"
                ),
            }
        }
    }

    /// HeadBucket: the root group's record (`Rejected(NoSuchBucket)` if absent).
    pub async fn get_bucket(&self, name: &str) -> Result<BucketRecord> {
        let resp = self
            .call(
                &Route::Root,
                |g| pb::GetBucketRequest {
                    group_id: g.0,
                    name: name.to_owned(),
                },
                |mut c, r| async move { c.get_bucket(r).await },
            )
            .await?;
        let b = resp
            .bucket
            .ok_or_else(|| protocol("GetBucket answered without a bucket"))?;
        BucketRecord::try_from(&b).map_err(protocol)
    }

    /// ListBuckets (of `owner`, if given), in name order.
    pub async fn list_buckets(&self, owner: Option<&str>) -> Result<Vec<BucketRecord>> {
        let resp = self
            .call(
                &Route::Root,
                |g| pb::ListBucketsRequest {
                    group_id: g.0,
                    owner: owner.map(str::to_owned),
                },
                |mut c, r| async move { c.list_buckets(r).await },
            )
            .await?;
        resp.buckets
            .iter()
            .map(|b| BucketRecord::try_from(b).map_err(protocol))
            .collect()
    }

    async fn set_versioning_in(
        &self,
        group: GroupId,
        name: &str,
        versioning: Versioning,
    ) -> Result<()> {
        self.call(
            &Route::Group(group),
            |g| pb::SetBucketVersioningRequest {
                group_id: g.0,
                name: name.to_owned(),
                versioning: wire::versioning_to_wire(versioning),
            },
            |mut c, r| async move { c.set_bucket_versioning(r).await },
        )
        .await
        .map(drop)
    }

    /// PutBucketVersioning: the root group, then every object group of the bucket.
    pub async fn set_bucket_versioning(&self, name: &str, versioning: Versioning) -> Result<()> {
        self.set_versioning_in(ROOT_GROUP, name, versioning).await?;
        self.in_bucket_groups(name, |g| {
            self.set_versioning_in(g, name, versioning).boxed()
        })
        .await
    }

    // ---- objects ----

    /// Commits a version (the atomic pointer flip).
    pub async fn put_object(&self, cmd: &PutObject) -> Result<Committed> {
        let r = self
            .call(
                &Route::Key(keys::object_key(&cmd.bucket, &cmd.key)),
                |g| wire::put_object_request(g, cmd),
                |mut c, r| async move { c.put_object(r).await },
            )
            .await?;
        Ok(committed(r))
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<VersionRecord>> {
        let resp = self
            .call(
                &Route::Key(keys::object_key(bucket, key)),
                |g| pb::GetObjectRequest {
                    group_id: g.0,
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    version_id: version_id.map(str::to_owned),
                },
                |mut c, r| async move { c.get_object(r).await },
            )
            .await?;
        resp.version
            .as_ref()
            .map(VersionRecord::try_from)
            .transpose()
            .map_err(protocol)
    }

    /// The current version of `(bucket, key)` (GET / HEAD without a version id).
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<CurrentVersion> {
        Ok(match self.get_object(bucket, key, None).await? {
            Some(v) if v.is_delete_marker => CurrentVersion::DeleteMarker(v),
            Some(v) => CurrentVersion::Object(v),
            None => CurrentVersion::Absent,
        })
    }

    /// Version `version_id` of `(bucket, key)` (possibly a delete marker), if it exists.
    pub async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<VersionRecord>> {
        self.get_object(bucket, key, Some(version_id)).await
    }

    pub async fn delete_object(&self, cmd: &DeleteObject) -> Result<Deleted> {
        let r = self
            .call(
                &Route::Key(keys::object_key(&cmd.bucket, &cmd.key)),
                |g| wire::delete_object_request(g, cmd),
                |mut c, r| async move { c.delete_object(r).await },
            )
            .await?;
        Ok(Deleted {
            version_id: r.version_id,
            delete_marker: r.delete_marker,
        })
    }

    /// Repair's compare-and-set of one stripe's placement; the stripe belongs to a
    /// version or part of `(bucket, key)`, which routes the call. Returns the fragments
    /// moved.
    pub async fn replace_placement(
        &self,
        bucket: &str,
        key: &str,
        cmd: &ReplacePlacement,
    ) -> Result<u32> {
        let r = self
            .call(
                &Route::Key(keys::object_key(bucket, key)),
                |g| wire::replace_placement_request(g, cmd),
                |mut c, r| async move { c.replace_placement(r).await },
            )
            .await?;
        Ok(r.moved)
    }

    /// [`Self::replace_placement`] sent to object group `group` itself (repair walks a
    /// group's stripes with [`Self::list_stripes`] and knows the group, while a part's
    /// owner names only its upload id). A `WRONG_GROUP` answer is
    /// [`MetaClientError::StaleGroupMap`].
    pub async fn replace_placement_in_group(
        &self,
        group: GroupId,
        cmd: &ReplacePlacement,
    ) -> Result<u32> {
        let r = self
            .call(
                &Route::Group(group),
                |g| wire::replace_placement_request(g, cmd),
                |mut c, r| async move { c.replace_placement(r).await },
            )
            .await?;
        Ok(r.moved)
    }

    /// Up to `limit` (at most 1000) stripes of object group `group` after `after`
    /// (exclusive), in stripe index order, with owner, code, length and placement: repair's
    /// walk over a group (see `state_machine::list_stripes` for the order). Resume with
    /// `after` = the last id of a page whose `is_truncated` is set. A linearizable read
    /// on the group's leader.
    pub async fn list_stripes(
        &self,
        group: GroupId,
        after: Option<StripeId>,
        limit: u32,
    ) -> Result<ListStripesPage> {
        let r = self
            .call(
                &Route::Group(group),
                |g| pb::ListStripesRequest {
                    group_id: g.0,
                    after: after
                        .map(proto::convert::stripe_id_to_wire)
                        .unwrap_or_default(),
                    limit,
                },
                |mut c, r| async move { c.list_stripes(r).await },
            )
            .await?;
        Ok(ListStripesPage {
            stripes: r
                .stripes
                .iter()
                .map(|s| StripeEntry::try_from(s).map_err(protocol))
                .collect::<Result<_>>()?,
            is_truncated: r.truncated,
        })
    }

    // ---- listings ----

    /// The groups a listing of `[lower, …)` walks, in key order (at least one, so that
    /// `NoSuchBucket` is reported even for an empty range).
    async fn listing_groups(
        &self,
        bucket: &str,
        prefix: &str,
        lower: Option<Vec<u8>>,
    ) -> Result<Vec<GroupId>> {
        let map = self.group_map().await?;
        let (start, end) = listing_range(bucket, prefix, lower);
        let mut groups: Vec<GroupId> = if start < end {
            map.groups_overlapping(&start, Some(&end))
                .map(|g| g.group)
                .collect()
        } else {
            Vec::new()
        };
        if groups.is_empty() {
            let (bs, be) = keys::bucket_range(bucket);
            groups.extend(
                map.groups_overlapping(&bs, Some(&be))
                    .map(|g| g.group)
                    .take(1),
            );
        }
        Ok(groups)
    }

    /// Walks `groups` in order collecting up to `max` items (see the module docs).
    /// Returns the items, whether more follow, and the resume cursor.
    #[allow(clippy::too_many_arguments)]
    async fn walk<'a, I, C, F>(
        &'a self,
        groups: Vec<GroupId>,
        max: usize,
        start: C,
        mut fetch: F,
        item_cursor: impl Fn(&I) -> C,
        prefix_cursor: impl Fn(&str) -> C,
        later_group: impl Fn(&C) -> C,
    ) -> Result<(Vec<Entry<I>>, bool, Option<C>)>
    where
        C: Clone,
        F: FnMut(GroupId, C, u32) -> BoxFuture<'a, Result<GroupPage<I, C>>>,
    {
        let mut out: Vec<Entry<I>> = Vec::new();
        let mut cursor = start;
        let is_dup = |out: &[Entry<I>], e: &Entry<I>| match (out.last(), e) {
            (Some(Entry::Prefix(a)), Entry::Prefix(b)) => a == b,
            _ => false,
        };
        if max == 0 {
            // Still ask one group, so that a missing bucket is reported.
            if let Some(&g) = groups.first() {
                fetch(g, cursor, 0).await?;
            }
            return Ok((out, false, None));
        }
        for (i, g) in groups.into_iter().enumerate() {
            let mut c = if i == 0 {
                cursor.clone()
            } else {
                later_group(&cursor)
            };
            loop {
                if out.len() < max {
                    let want = u32::try_from(max - out.len()).unwrap_or(MAX_LIST_KEYS);
                    let page = fetch(g, c.clone(), want).await?;
                    for e in page.items {
                        if !is_dup(&out, &e) {
                            out.push(e);
                        }
                    }
                    if !page.truncated {
                        break;
                    }
                    c = page
                        .next
                        .ok_or_else(|| protocol("a truncated page without a resume position"))?;
                    cursor = c.clone();
                    if out.len() >= max {
                        return Ok((out, true, Some(c)));
                    }
                } else {
                    // Full, and the previous group ended exactly here: does anything follow?
                    let page = fetch(g, c.clone(), 1).await?;
                    let Some(first) = page.items.into_iter().next() else {
                        break;
                    };
                    if !is_dup(&out, &first) {
                        let resume = match out.last() {
                            Some(Entry::Item(i)) => item_cursor(i),
                            Some(Entry::Prefix(p)) => prefix_cursor(p),
                            None => return Err(protocol("a full page without entries")),
                        };
                        return Ok((out, true, Some(resume)));
                    }
                    // The trailing common prefix continues in this group.
                    if page.truncated {
                        return Ok((out, true, page.next));
                    }
                    break;
                }
            }
        }
        Ok((out, false, None))
    }

    async fn list_objects_in(
        &self,
        group: GroupId,
        bucket: &str,
        params: &ListObjectsParams,
    ) -> Result<GroupPage<ObjectEntry, Option<String>>> {
        let r = self
            .call(
                &Route::Group(group),
                |g| pb::ListObjectsRequest {
                    group_id: g.0,
                    bucket: bucket.to_owned(),
                    prefix: params.prefix.clone(),
                    delimiter: params.delimiter.clone(),
                    start_after: params.start_after.clone(),
                    max_keys: params.max_keys,
                },
                |mut c, r| async move { c.list_objects(r).await },
            )
            .await?;
        let entries = r.entries.iter().map(ObjectEntry::from).collect();
        Ok(GroupPage {
            items: merge(entries, |e: &ObjectEntry| e.key.as_str(), r.common_prefixes),
            truncated: r.is_truncated,
            next: r.next.map(Some),
        })
    }

    /// ListObjects (V1 and V2) across groups. `params.end_before` is ignored (group
    /// bounds are the service's business); `max_keys` is capped at 1000.
    pub async fn list_objects(
        &self,
        bucket: &str,
        params: &ListObjectsParams,
    ) -> Result<ListObjectsPage> {
        let lower = params
            .start_after
            .as_ref()
            .map(|s| keys::after_object(bucket, s));
        let max = params.max_keys.min(MAX_LIST_KEYS) as usize;
        let (items, truncated, next) = self
            .with_fresh_map(|| async {
                let groups = self
                    .listing_groups(bucket, &params.prefix, lower.clone())
                    .await?;
                self.walk(
                    groups,
                    max,
                    params.start_after.clone(),
                    |g, cursor, want| {
                        let p = ListObjectsParams {
                            start_after: cursor,
                            max_keys: want,
                            end_before: None,
                            ..params.clone()
                        };
                        async move { self.list_objects_in(g, bucket, &p).await }.boxed()
                    },
                    |e: &ObjectEntry| Some(e.key.clone()),
                    |p| Some(past_prefix(p)),
                    Clone::clone,
                )
                .await
            })
            .await?;
        let mut page = ListObjectsPage {
            is_truncated: truncated,
            next: next.flatten(),
            ..ListObjectsPage::default()
        };
        for e in items {
            match e {
                Entry::Item(i) => page.entries.push(i),
                Entry::Prefix(p) => page.common_prefixes.push(p),
            }
        }
        Ok(page)
    }

    /// Runs a multi-group read, starting over (bounded) when the group map changed.
    async fn with_fresh_map<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut last = String::new();
        for _ in 0..3 {
            match op().await {
                Err(MetaClientError::StaleGroupMap(m)) => last = m,
                other => return other,
            }
        }
        Err(MetaClientError::StaleGroupMap(last))
    }

    async fn list_versions_in(
        &self,
        group: GroupId,
        bucket: &str,
        params: &ListVersionsParams,
    ) -> Result<GroupPage<VersionEntry, Markers>> {
        let r = self
            .call(
                &Route::Group(group),
                |g| pb::ListObjectVersionsRequest {
                    group_id: g.0,
                    bucket: bucket.to_owned(),
                    prefix: params.prefix.clone(),
                    delimiter: params.delimiter.clone(),
                    key_marker: params.key_marker.clone(),
                    version_id_marker: params.version_id_marker.clone(),
                    max_keys: params.max_keys,
                },
                |mut c, r| async move { c.list_object_versions(r).await },
            )
            .await?;
        let versions = r.versions.iter().map(VersionEntry::from).collect();
        Ok(GroupPage {
            items: merge(
                versions,
                |v: &VersionEntry| v.key.as_str(),
                r.common_prefixes,
            ),
            truncated: r.is_truncated,
            next: Some((r.next_key_marker, r.next_version_id_marker)),
        })
    }

    /// ListObjectVersions across groups (`params.end_before` is ignored).
    pub async fn list_object_versions(
        &self,
        bucket: &str,
        params: &ListVersionsParams,
    ) -> Result<ListVersionsPage> {
        let version_marker = params.version_id_marker.clone().filter(|v| !v.is_empty());
        let lower = params.key_marker.as_ref().map(|k| match version_marker {
            Some(_) => keys::object_key(bucket, k),
            None => keys::after_object(bucket, k),
        });
        let max = params.max_keys.min(MAX_LIST_KEYS) as usize;
        let start = (params.key_marker.clone(), version_marker);
        let (items, truncated, next) = self
            .with_fresh_map(|| async {
                let groups = self
                    .listing_groups(bucket, &params.prefix, lower.clone())
                    .await?;
                self.walk(
                    groups,
                    max,
                    start.clone(),
                    |g, (key_marker, version_id_marker), want| {
                        let p = ListVersionsParams {
                            key_marker,
                            version_id_marker,
                            max_keys: want,
                            end_before: None,
                            ..params.clone()
                        };
                        async move { self.list_versions_in(g, bucket, &p).await }.boxed()
                    },
                    |v: &VersionEntry| (Some(v.key.clone()), Some(v.version_id.clone())),
                    |p| (Some(past_prefix(p)), None),
                    // A version id marker names a version in the first group only.
                    |(k, _)| (k.clone(), None),
                )
                .await
            })
            .await?;
        let mut page = ListVersionsPage {
            is_truncated: truncated,
            ..ListVersionsPage::default()
        };
        if let Some((k, v)) = next {
            page.next_key_marker = k;
            page.next_version_id_marker = v;
        }
        for e in items {
            match e {
                Entry::Item(i) => page.versions.push(i),
                Entry::Prefix(p) => page.common_prefixes.push(p),
            }
        }
        Ok(page)
    }

    // ---- multipart ----

    pub async fn create_multipart_upload(&self, cmd: &CreateMultipartUpload) -> Result<()> {
        self.call(
            &Route::Key(keys::object_key(&cmd.bucket, &cmd.key)),
            |g| wire::create_upload_request(g, cmd),
            |mut c, r| async move { c.create_multipart_upload(r).await },
        )
        .await
        .map(drop)
    }

    /// The upload `upload_id` of `(bucket, key)` (`Rejected(NoSuchUpload)` if it is not
    /// in progress).
    pub async fn get_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<MultipartUpload> {
        let r = self
            .call(
                &Route::Key(keys::object_key(bucket, key)),
                |g| pb::GetUploadRequest {
                    group_id: g.0,
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    upload_id: upload_id.to_owned(),
                },
                |mut c, r| async move { c.get_upload(r).await },
            )
            .await?;
        let u = r
            .upload
            .ok_or_else(|| protocol("GetUpload answered without an upload"))?;
        MultipartUpload::try_from(&u).map_err(protocol)
    }

    pub async fn record_part(&self, cmd: &RecordPart) -> Result<()> {
        self.call(
            &Route::Key(keys::object_key(&cmd.bucket, &cmd.key)),
            |g| wire::record_part_request(g, cmd),
            |mut c, r| async move { c.record_part(r).await },
        )
        .await
        .map(drop)
    }

    pub async fn complete_multipart_upload(
        &self,
        cmd: &CompleteMultipartUpload,
    ) -> Result<Committed> {
        let r = self
            .call(
                &Route::Key(keys::object_key(&cmd.bucket, &cmd.key)),
                |g| wire::complete_upload_request(g, cmd),
                |mut c, r| async move { c.complete_multipart_upload(r).await },
            )
            .await?;
        Ok(committed(r))
    }

    /// Aborts an upload; returns how many parts went to the GC queue.
    pub async fn abort_multipart_upload(&self, cmd: &AbortMultipartUpload) -> Result<u32> {
        let r = self
            .call(
                &Route::Key(keys::object_key(&cmd.bucket, &cmd.key)),
                |g| pb::AbortMultipartUploadRequest {
                    group_id: g.0,
                    bucket: cmd.bucket.clone(),
                    key: cmd.key.clone(),
                    upload_id: cmd.upload_id.clone(),
                },
                |mut c, r| async move { c.abort_multipart_upload(r).await },
            )
            .await?;
        Ok(r.parts)
    }

    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: u32,
    ) -> Result<ListPartsPage> {
        let r = self
            .call(
                &Route::Key(keys::object_key(bucket, key)),
                |g| pb::ListPartsRequest {
                    group_id: g.0,
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    upload_id: upload_id.to_owned(),
                    part_number_marker,
                    max_parts,
                },
                |mut c, r| async move { c.list_parts(r).await },
            )
            .await?;
        let upload = r
            .upload
            .as_ref()
            .ok_or_else(|| protocol("ListParts answered without the upload"))?;
        Ok(ListPartsPage {
            upload: MultipartUpload::try_from(upload).map_err(protocol)?,
            parts: r
                .parts
                .iter()
                .map(PartRecord::try_from)
                .collect::<Result<_, _>>()
                .map_err(protocol)?,
            is_truncated: r.is_truncated,
            next_part_number_marker: r.next_part_number_marker,
        })
    }

    async fn list_uploads_in(
        &self,
        group: GroupId,
        bucket: &str,
        params: &ListUploadsParams,
    ) -> Result<GroupPage<MultipartUpload, Markers>> {
        let r = self
            .call(
                &Route::Group(group),
                |g| pb::ListMultipartUploadsRequest {
                    group_id: g.0,
                    bucket: bucket.to_owned(),
                    prefix: params.prefix.clone(),
                    delimiter: params.delimiter.clone(),
                    key_marker: params.key_marker.clone(),
                    upload_id_marker: params.upload_id_marker.clone(),
                    max_uploads: params.max_uploads,
                },
                |mut c, r| async move { c.list_multipart_uploads(r).await },
            )
            .await?;
        let uploads = r
            .uploads
            .iter()
            .map(MultipartUpload::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(protocol)?;
        Ok(GroupPage {
            items: merge(
                uploads,
                |u: &MultipartUpload| u.key.as_str(),
                r.common_prefixes,
            ),
            truncated: r.is_truncated,
            next: Some((r.next_key_marker, r.next_upload_id_marker)),
        })
    }

    /// ListMultipartUploads across groups (`params.end_before` is ignored).
    pub async fn list_multipart_uploads(
        &self,
        bucket: &str,
        params: &ListUploadsParams,
    ) -> Result<ListUploadsPage> {
        let upload_marker = params
            .key_marker
            .as_ref()
            .and(params.upload_id_marker.clone())
            .filter(|u| !u.is_empty());
        let lower = params.key_marker.as_ref().map(|k| match upload_marker {
            Some(_) => keys::object_key(bucket, k),
            None => keys::after_object(bucket, k),
        });
        let max = params.max_uploads.min(MAX_LIST_KEYS) as usize;
        let start = (params.key_marker.clone(), upload_marker);
        let (items, truncated, next) = self
            .with_fresh_map(|| async {
                let groups = self
                    .listing_groups(bucket, &params.prefix, lower.clone())
                    .await?;
                self.walk(
                    groups,
                    max,
                    start.clone(),
                    |g, (key_marker, upload_id_marker), want| {
                        let p = ListUploadsParams {
                            key_marker,
                            upload_id_marker,
                            max_uploads: want,
                            end_before: None,
                            ..params.clone()
                        };
                        async move { self.list_uploads_in(g, bucket, &p).await }.boxed()
                    },
                    |u: &MultipartUpload| (Some(u.key.clone()), Some(u.upload_id.clone())),
                    |p| (Some(past_prefix(p)), None),
                    |(k, _)| (k.clone(), None),
                )
                .await
            })
            .await?;
        let mut page = ListUploadsPage {
            is_truncated: truncated,
            ..ListUploadsPage::default()
        };
        if let Some((k, u)) = next {
            page.next_key_marker = k;
            page.next_upload_id_marker = u;
        }
        for e in items {
            match e {
                Entry::Item(i) => page.uploads.push(i),
                Entry::Prefix(p) => page.common_prefixes.push(p),
            }
        }
        Ok(page)
    }

    // ---- GC queue ----

    /// Up to `limit` (at most 1000) GC entries of object group `group`, oldest first,
    /// after `after`.
    pub async fn gc_take(
        &self,
        group: GroupId,
        after: Option<GcId>,
        limit: u32,
    ) -> Result<Vec<GcEntry>> {
        let r = self
            .call(
                &Route::Group(group),
                |g| pb::GcTakeRequest {
                    group_id: g.0,
                    after: after.map(pb::GcId::from),
                    limit,
                },
                |mut c, r| async move { c.gc_take(r).await },
            )
            .await?;
        r.entries
            .iter()
            .map(|e| GcEntry::try_from(e).map_err(protocol))
            .collect()
    }

    /// Removes GC entries whose fragments were deleted; returns how many were queued.
    pub async fn gc_ack(&self, group: GroupId, ids: &[GcId]) -> Result<u32> {
        let r = self
            .call(
                &Route::Group(group),
                |g| pb::GcAckRequest {
                    group_id: g.0,
                    ids: ids.iter().copied().map(pb::GcId::from).collect(),
                },
                |mut c, r| async move { c.gc_ack(r).await },
            )
            .await?;
        Ok(r.removed)
    }

    // ---- root group ----

    /// Every registered data node with its liveness bookkeeping.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let r = self
            .call(
                &Route::Root,
                |_| pb::GetClusterMapRequest {},
                |mut c, r| async move { c.get_cluster_map(r).await },
            )
            .await?;
        r.nodes
            .iter()
            .map(|n| NodeRecord::try_from(n).map_err(protocol))
            .collect()
    }

    /// The cluster map the placement planner works from.
    pub async fn cluster_map(&self) -> Result<ClusterMap> {
        let mut map = ClusterMap::default();
        for r in self.nodes().await? {
            map.nodes.insert(r.info.id, r.info);
        }
        Ok(map)
    }

    pub async fn register_node(&self, info: &NodeInfo, at_ms: u64) -> Result<()> {
        self.call(
            &Route::Root,
            |_| pb::RegisterNodeRequest {
                info: Some(info.into()),
                at_ms,
            },
            |mut c, r| async move { c.register_node(r).await },
        )
        .await
        .map(drop)
    }

    pub async fn heartbeat(&self, node: NodeId, at_ms: u64, disks: &[DiskInfo]) -> Result<()> {
        self.call(
            &Route::Root,
            |_| pb::HeartbeatRequest {
                node_id: node.0,
                at_ms,
                disks: disks.iter().map(pb::DiskInfo::from).collect(),
            },
            |mut c, r| async move { c.heartbeat(r).await },
        )
        .await
        .map(drop)
    }

    pub async fn set_node_state(&self, node: NodeId, state: NodeState, reason: &str) -> Result<()> {
        self.call(
            &Route::Root,
            |_| pb::SetNodeStateRequest {
                node_id: node.0,
                state: node_state_to_wire(state),
                reason: reason.to_owned(),
            },
            |mut c, r| async move { c.set_node_state(r).await },
        )
        .await
        .map(drop)
    }

    /// Marks disk `disk` of `node` failed (it receives no new fragments; heartbeats do
    /// not bring it back) or healthy again.
    pub async fn set_disk_state(
        &self,
        node: NodeId,
        disk: common::ids::DiskId,
        state: common::cluster::DiskState,
        reason: &str,
    ) -> Result<()> {
        self.call(
            &Route::Root,
            |_| pb::SetDiskStateRequest {
                node_id: node.0,
                disk_id: disk.0,
                state: proto::convert::disk_state_to_wire(state),
                reason: reason.to_owned(),
            },
            |mut c, r| async move { c.set_disk_state(r).await },
        )
        .await
        .map(drop)
    }

    /// Removes data node `node` from the cluster map; the root group refuses unless it
    /// is Draining or Dead. Callers check first that nothing references it any more.
    pub async fn remove_node(&self, node: NodeId) -> Result<()> {
        self.call(
            &Route::Root,
            |_| pb::RemoveNodeRequest { node_id: node.0 },
            |mut c, r| async move { c.remove_node(r).await },
        )
        .await
        .map(drop)
    }

    pub async fn create_access_key(&self, key: &AccessKey) -> Result<()> {
        self.call(
            &Route::Root,
            |_| pb::CreateAccessKeyRequest {
                key: Some(key.into()),
            },
            |mut c, r| async move { c.create_access_key(r).await },
        )
        .await
        .map(drop)
    }

    pub async fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>> {
        let r = self
            .call(
                &Route::Root,
                |_| pb::GetAccessKeyRequest { id: id.to_owned() },
                |mut c, r| async move { c.get_access_key(r).await },
            )
            .await?;
        Ok(r.key.as_ref().map(AccessKey::from))
    }

    pub async fn list_access_keys(&self) -> Result<Vec<AccessKey>> {
        let r = self
            .call(
                &Route::Root,
                |_| pb::ListAccessKeysRequest {},
                |mut c, r| async move { c.list_access_keys(r).await },
            )
            .await?;
        Ok(r.keys.iter().map(AccessKey::from).collect())
    }

    pub async fn delete_access_key(&self, id: &str) -> Result<()> {
        self.call(
            &Route::Root,
            |_| pb::DeleteAccessKeyRequest { id: id.to_owned() },
            |mut c, r| async move { c.delete_access_key(r).await },
        )
        .await
        .map(drop)
    }

    // ---- group membership and status ----

    /// Every group: the root group, then the object groups in key order.
    pub async fn all_groups(&self) -> Result<Vec<GroupId>> {
        let mut groups = vec![ROOT_GROUP];
        groups.extend(
            self.refresh_group_map()
                .await?
                .groups
                .iter()
                .map(|g| g.group),
        );
        Ok(groups)
    }

    /// `group` as its leader reports it (role, voters, log and apply indexes, replication).
    pub async fn group_status(&self, group: GroupId) -> Result<GroupStatus> {
        let r = self
            .call(
                &Route::Group(group),
                |g| pb::GroupStatusRequest {
                    group_id: g.0,
                    local: false,
                },
                |mut c, r| async move { c.group_status(r).await },
            )
            .await?;
        r.status
            .as_ref()
            .map(GroupStatus::from)
            .ok_or_else(|| protocol("GroupStatus answered without a status"))
    }

    /// The maintenance report of `group`'s leader (`None`: it runs no maintenance
    /// loops). The loops work for the groups a node leads, so the leaders of all object
    /// groups together cover the cluster; several groups may share one leader.
    pub async fn maintain_status(&self, group: GroupId) -> Result<Option<MaintainReport>> {
        let r = self
            .call(
                &Route::Group(group),
                |g| pb::MaintainStatusRequest {
                    group_id: g.0,
                    local: false,
                },
                |mut c, r| async move { c.maintain_status(r).await },
            )
            .await?;
        Ok(r.report.as_ref().map(MaintainReport::from))
    }

    /// The maintenance reports of the object groups' leaders, one per distinct meta node
    /// (several groups may share a leader). A group without a reachable leader, or whose
    /// leader runs no loops, contributes nothing.
    pub async fn maintain_reports(&self) -> Result<BTreeMap<u64, MaintainReport>> {
        let mut reports = BTreeMap::new();
        for group in self.object_groups().await? {
            if let Ok(Some(r)) = self.maintain_status(group).await {
                reports.insert(r.node_id, r);
            }
        }
        Ok(reports)
    }

    /// Every group's status (see [`Self::all_groups`]).
    pub async fn group_statuses(&self) -> Result<Vec<GroupStatus>> {
        let mut out = Vec::new();
        for g in self.all_groups().await? {
            out.push(self.group_status(g).await?);
        }
        Ok(out)
    }

    /// Adds node `node_id` at `addr` to `group`'s voters (as a learner until it has caught
    /// up, then a voter), then records the new voters in the group map. Retries while the
    /// learner catches up or another change is in progress, for at most
    /// [`MEMBERSHIP_BUDGET`]. Idempotent.
    pub async fn add_voter(&self, group: GroupId, node_id: u64, addr: &str) -> Result<GroupStatus> {
        let r = self
            .membership_retry(|| async {
                self.call(
                    &Route::Group(group),
                    |g| pb::AddVoterRequest {
                        group_id: g.0,
                        node_id,
                        addr: addr.to_owned(),
                    },
                    |mut c, r| async move { c.add_voter(r).await },
                )
                .await
            })
            .await?;
        let status = r
            .status
            .as_ref()
            .map(GroupStatus::from)
            .ok_or_else(|| protocol("AddVoter answered without a status"))?;
        self.record_members(&status).await?;
        Ok(status)
    }

    /// Removes node `node_id` from `group`'s voters, then records the new voters in the
    /// group map. Idempotent.
    pub async fn remove_voter(&self, group: GroupId, node_id: u64) -> Result<GroupStatus> {
        let r = self
            .membership_retry(|| async {
                self.call(
                    &Route::Group(group),
                    |g| pb::RemoveVoterRequest {
                        group_id: g.0,
                        node_id,
                    },
                    |mut c, r| async move { c.remove_voter(r).await },
                )
                .await
            })
            .await?;
        let status = r
            .status
            .as_ref()
            .map(GroupStatus::from)
            .ok_or_else(|| protocol("RemoveVoter answered without a status"))?;
        self.record_members(&status).await?;
        Ok(status)
    }

    /// [`Self::add_voter`] for every group (root first).
    pub async fn add_voter_all(&self, node_id: u64, addr: &str) -> Result<Vec<GroupStatus>> {
        let mut out = Vec::new();
        for g in self.all_groups().await? {
            out.push(self.add_voter(g, node_id, addr).await?);
        }
        Ok(out)
    }

    /// [`Self::remove_voter`] for every group (object groups first, the root last).
    pub async fn remove_voter_all(&self, node_id: u64) -> Result<Vec<GroupStatus>> {
        let mut groups = self.all_groups().await?;
        groups.rotate_left(1);
        let mut out = Vec::new();
        for g in groups {
            out.push(self.remove_voter(g, node_id).await?);
        }
        Ok(out)
    }

    /// Runs `f` again while it is `Unavailable` (a learner catching up, a change in
    /// progress, an election), for at most [`MEMBERSHIP_BUDGET`].
    async fn membership_retry<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let clock = &self.inner.clock;
        let started = clock.now();
        loop {
            match f().await {
                Err(MetaClientError::Unavailable { retry_after, .. })
                    if clock.now().duration_since(started) < MEMBERSHIP_BUDGET =>
                {
                    clock.sleep(retry_after.min(Duration::from_secs(1))).await;
                }
                other => return other,
            }
        }
    }

    /// Records a changed object group's voters in the group map (the root group is not
    /// in the map: clients find it through their seeds).
    ///
    /// Last writer wins: two membership changes of one group racing from two admin tools
    /// can leave the map with the older voters until the next change of that group.
    async fn record_members(&self, status: &GroupStatus) -> Result<()> {
        if status.group == ROOT_GROUP {
            return Ok(());
        }
        let members: HashMap<u64, String> = status
            .voters
            .iter()
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        self.call(
            &Route::Root,
            |_| pb::SetGroupMembersRequest {
                group_id: status.group.0,
                members: members.clone(),
            },
            |mut c, r| async move { c.set_group_members(r).await },
        )
        .await?;
        self.refresh_group_map().await?;
        Ok(())
    }
}

/// How long [`MetaClient::add_voter`] and [`MetaClient::remove_voter`] keep retrying a
/// change that is not finished yet (a learner catching up from far behind).
pub const MEMBERSHIP_BUDGET: Duration = Duration::from_secs(60);

fn committed(r: pb::CommitResponse) -> Committed {
    Committed {
        version_id: r.version_id,
        seq: r.seq,
        etag: r.etag,
        size: r.size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_prefix_sorts_after_every_key_under_the_prefix_and_before_the_rest() {
        let p = "dir/";
        let s = past_prefix(p);
        assert!(s.len() > MAX_KEY_LEN);
        let longest_under: String =
            format!("{p}{}", "\u{10FFFF}".repeat((MAX_KEY_LEN - p.len()) / 4));
        for k in ["dir/", "dir/a", "dir/\u{10FFFF}", longest_under.as_str()] {
            assert!(k < s.as_str(), "{k:?}");
        }
        for k in ["dir0", "dis", "e"] {
            assert!(k > s.as_str(), "{k:?}");
        }
    }

    #[test]
    fn merge_orders_entries_and_prefixes() {
        let items = vec!["a", "c/", "e"];
        let merged = merge(items, |s| s, vec!["b/".into(), "d/".into(), "f/".into()]);
        let flat: Vec<String> = merged
            .into_iter()
            .map(|e| match e {
                Entry::Item(i) => format!("k:{i}"),
                Entry::Prefix(p) => format!("p:{p}"),
            })
            .collect();
        assert_eq!(flat, ["k:a", "p:b/", "k:c/", "p:d/", "k:e", "p:f/"]);
    }
}
