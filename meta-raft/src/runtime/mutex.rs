//! Async mutex over `tokio::sync::Mutex` (FIFO, deterministic under madsim).

use std::future::Future;

use openraft::rt::{Mutex, OptionalSend};

pub struct ShaleMutex<T>(tokio::sync::Mutex<T>);

impl<T: OptionalSend + 'static> Mutex<T> for ShaleMutex<T> {
    type Guard<'a> = tokio::sync::MutexGuard<'a, T>;

    fn new(value: T) -> Self {
        Self(tokio::sync::Mutex::new(value))
    }

    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> + OptionalSend {
        self.0.lock()
    }
}
