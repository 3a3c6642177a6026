//! The determinism seams. Library code takes time, randomness, disks and task spawning
//! from here and nowhere else (clippy's `disallowed-methods` enforces it), so the same
//! code runs on tokio in production and inside madsim in simulation, and one seed
//! replays a whole simulated run.
//!
//! - `Clock`: monotonic time, sleeps, timeouts, and a wall clock with a per-node offset.
//! - `Rng`: seeded xoshiro256++, split per node and per task with `fork`.
//! - `Disk`: positional file I/O plus the directory operations a node needs;
//!   `RealDisk` (std::fs + fsync) and `SimDisk` (in-memory, with a fault model).
//! - `Env::spawn` / `Env::spawn_blocking`: task spawning through the runtime that is
//!   compiled in (tokio, or madsim through the `tokio` → `madsim-tokio` rename).
//! - `planted`: the simulator's switches for deliberate product bugs (simulation only;
//!   constant off in a normal build), which prove the checkers can fail.

mod clock;
mod disk;
mod net;
pub mod planted;
mod real_disk;
mod rng;
mod sim_disk;

#[cfg(test)]
mod disk_test;
#[cfg(test)]
mod net_test;

use std::future::Future;
use std::sync::{Arc, Mutex};

pub use clock::{Clock, Elapsed, Instant};
pub use disk::{parent_dir, validate_path, DirEntry, Disk, DiskFile, DiskOp, OpenMode};
pub use net::free_loopback_addr;
pub use real_disk::RealDisk;
pub use rng::{splitmix64, Rng};
pub use sim_disk::{SimDisk, SimDiskFaults, SimDiskStats};
pub use tokio::task::JoinHandle;

/// One node's view of the world: its clock and its random stream. Cheap to clone;
/// clones share the clock offset and the random stream.
#[derive(Clone, Debug)]
pub struct Env {
    clock: Clock,
    rng: Arc<Mutex<Rng>>,
    seed: u64,
}

impl Env {
    /// An environment whose randomness descends from `seed` (simulation and tests).
    pub fn seeded(seed: u64) -> Self {
        Self {
            clock: Clock::new(),
            rng: Arc::new(Mutex::new(Rng::new(seed))),
            seed,
        }
    }

    /// Production: seeded from OS entropy (through std's per-process random hash keys),
    /// mixed with the wall clock; in simulation from madsim's seed. The seed is kept so a report can print it.
    pub fn from_entropy() -> Self {
        Self::seeded(entropy_seed() ^ Clock::new().unix_ms())
    }

    /// The seed this environment started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Runs `f` with exclusive access to this environment's random stream.
    pub fn with_rng<T>(&self, f: impl FnOnce(&mut Rng) -> T) -> T {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut rng)
    }

    pub fn random_u64(&self) -> u64 {
        self.with_rng(Rng::next_u64)
    }

    pub fn random_u128(&self) -> u128 {
        self.with_rng(Rng::next_u128)
    }

    /// A child environment for another node or subsystem: same clock offset semantics
    /// (a fresh, unskewed clock) and an independent random stream forked from this one.
    pub fn fork(&self) -> Env {
        let seed = self.random_u64();
        Env::seeded(seed)
    }

    /// Spawns a task on the current runtime. `name` appears in traces.
    pub fn spawn<F>(&self, name: &'static str, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn(name, fut)
    }

    /// Runs blocking work (disk I/O) off the async executor.
    pub fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_blocking(f)
    }
}

/// Spawns a task on the current runtime (tokio, or madsim in simulation). For code that
/// has no `Env` at hand, such as openraft's runtime adapter.
#[allow(clippy::disallowed_methods)] // the one sanctioned spawn site
pub fn spawn<F>(name: &'static str, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tracing::trace!(task = name, "spawn");
    tokio::spawn(fut)
}

/// Runs blocking work off the async executor. Under madsim this is an ordinary
/// simulated task (madsim refuses OS threads).
#[allow(clippy::disallowed_methods)] // the one sanctioned spawn_blocking site
#[allow(deprecated)] // madsim-tokio deprecates it: in simulation it is a plain task
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
}

/// Monotonic now from the runtime clock (virtual in simulation).
pub fn monotonic_now() -> Instant {
    Clock::new().now()
}

/// A fresh seed: from madsim's seeded generator in simulation (so runs replay), from OS
/// entropy otherwise. For components that must draw randomness without an `Env`
/// (openraft's per-call RNG).
pub fn entropy_seed() -> u64 {
    #[cfg(madsim)]
    {
        madsim::rand::random::<u64>()
    }
    #[cfg(not(madsim))]
    {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.finish()
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM). In simulation only
/// madsim's Ctrl-C exists: nodes are stopped by the harness.
pub async fn shutdown_signal() {
    #[cfg(not(madsim))]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                biased; // the house rule (tidy): no unseeded branch choice
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A runtime owned by the caller, for drivers that must block on a future (tests,
/// openraft's `AsyncRuntime::block_on`): tokio in production, a fresh madsim runtime in
/// simulation.
pub struct BlockingRuntime {
    #[cfg(not(madsim))]
    rt: tokio::runtime::Runtime,
    #[cfg(madsim)]
    rt: madsim::runtime::Runtime,
}

impl std::fmt::Debug for BlockingRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingRuntime").finish_non_exhaustive()
    }
}

impl BlockingRuntime {
    /// `threads` worker threads (ignored in simulation, which is single-threaded).
    pub fn new(threads: usize) -> std::io::Result<Self> {
        #[cfg(not(madsim))]
        {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .enable_all()
                .build()?;
            Ok(Self { rt })
        }
        #[cfg(madsim)]
        {
            let _ = threads;
            Ok(Self {
                rt: madsim::runtime::Runtime::new(),
            })
        }
    }

    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }
}
