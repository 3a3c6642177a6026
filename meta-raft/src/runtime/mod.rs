//! `ShaleRuntime`: openraft's `AsyncRuntime` implemented over `common::env`, so the same
//! Raft code runs on tokio in production and on madsim in simulation.
//!
//! Facts this module is built on (DESIGN.md, checked here by openraft-rt's own runtime
//! test suite in both worlds):
//! - tokio's `watch` is not deterministic under madsim (its wake order uses a
//!   thread-local RNG), so `watch.rs` is a small deterministic watch over `Notify`;
//!   tokio's mpsc, oneshot and mutex are deterministic and used as they are;
//! - madsim's `timeout` future is unnameable and not `Send`, so `Timeout` is our own;
//! - the default `spawn_blocking` starts an OS thread, which madsim refuses: overridden;
//! - the RNG is seeded per call from `env::entropy_seed` (madsim's seeded generator in
//!   simulation), never from a thread-local that would leak between simulated runs.

mod instant;
mod mpsc;
mod mutex;
mod oneshot;
mod rng;
mod timeout;
mod watch;

#[cfg(test)]
mod runtime_test;

use std::future::Future;
use std::io;
use std::time::Duration;

use openraft::rt::{AsyncRuntime, OptionalSend};

pub use instant::ShaleInstant;
pub use mpsc::{ShaleMpsc, ShaleMpscReceiver, ShaleMpscSender, ShaleMpscWeakSender};
pub use mutex::ShaleMutex;
pub use oneshot::{ShaleOneshot, ShaleOneshotSender};
pub use rng::RaftRng;
pub use timeout::Timeout;
pub use watch::{ShaleWatch, ShaleWatchReceiver, ShaleWatchSender};

#[derive(Debug)]
pub struct ShaleRuntime {
    /// Only for `AsyncRuntime::new`/`block_on` (openraft's test helpers); Shale itself
    /// runs Raft inside the runtime the process (or madsim) already has.
    rt: common::env::BlockingRuntime,
}

impl AsyncRuntime for ShaleRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = ShaleInstant;
    type TimeoutError = common::env::Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    type ThreadLocalRng = RaftRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        common::env::spawn("openraft", future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        tokio::time::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline.0)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout::new(future, tokio::time::sleep(duration), duration)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        let within = deadline
            .0
            .saturating_duration_since(common::env::monotonic_now());
        Timeout::new(future, tokio::time::sleep_until(deadline.0), within)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        RaftRng::new(common::env::entropy_seed())
    }

    type Mpsc = ShaleMpsc;
    type Watch = ShaleWatch;
    type Oneshot = ShaleOneshot;
    type Mutex<T: OptionalSend + 'static> = ShaleMutex<T>;

    fn new(threads: usize) -> Self {
        let rt = common::env::BlockingRuntime::new(threads)
            .expect("building a runtime for openraft's test helpers");
        Self { rt }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.rt.block_on(future)
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let handle = common::env::spawn_blocking(f);
        async move { handle.await.map_err(|e| io::Error::other(e.to_string())) }
    }
}
