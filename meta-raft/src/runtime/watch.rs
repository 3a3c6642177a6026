//! A deterministic watch channel. tokio's `watch` picks which of its internal notifiers to
//! wake with a thread-local RNG, so under madsim two runs of one seed can wake receivers
//! in different orders. This one keeps the value under a lock with a version counter and
//! wakes waiters through one `tokio::sync::Notify`, whose waiter list is FIFO.
//!
//! Semantics follow tokio's watch: a new receiver has seen the current value; `changed`
//! resolves once the version moves past what the receiver saw, or errors once every
//! sender is gone; `send` fails (returning the value) when no receiver is left.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use openraft::rt::watch::{RecvError, SendError};
use openraft::rt::{OptionalSend, OptionalSync, Watch, WatchReceiver, WatchSender};
use tokio::sync::Notify;

pub struct ShaleWatch;

struct Shared<T> {
    value: RwLock<T>,
    version: AtomicU64,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    notify: Notify,
}

impl<T> Shared<T> {
    fn read(&self) -> RwLockReadGuard<'_, T> {
        self.value.read().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

pub struct ShaleWatchSender<T> {
    shared: Arc<Shared<T>>,
}

pub struct ShaleWatchReceiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

impl<T> Clone for ShaleWatchSender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::SeqCst);
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for ShaleWatchSender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Last sender gone: wake every receiver so `changed` can report closure.
            self.shared.notify.notify_waiters();
        }
    }
}

impl<T> Clone for ShaleWatchReceiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::SeqCst);
        Self {
            shared: Arc::clone(&self.shared),
            seen: self.seen,
        }
    }
}

impl<T> Drop for ShaleWatchReceiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Watch for ShaleWatch {
    type Sender<T: OptionalSend + OptionalSync> = ShaleWatchSender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = ShaleWatchReceiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = RwLockReadGuard<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (Self::Sender<T>, Self::Receiver<T>) {
        let shared = Arc::new(Shared {
            value: RwLock::new(init),
            version: AtomicU64::new(0),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            notify: Notify::new(),
        });
        let rx = ShaleWatchReceiver {
            shared: Arc::clone(&shared),
            seen: 0,
        };
        (ShaleWatchSender { shared }, rx)
    }
}

impl<T: OptionalSend + OptionalSync> WatchSender<ShaleWatch, T> for ShaleWatchSender<T> {
    fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.receivers.load(Ordering::SeqCst) == 0 {
            return Err(SendError(value));
        }
        *self.shared.value.write().unwrap_or_else(|e| e.into_inner()) = value;
        self.shared.bump();
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        let modified = {
            let mut guard = self.shared.value.write().unwrap_or_else(|e| e.into_inner());
            modify(&mut guard)
        };
        if modified {
            self.shared.bump();
        }
        modified
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.read()
    }

    fn subscribe(&self) -> ShaleWatchReceiver<T> {
        self.shared.receivers.fetch_add(1, Ordering::SeqCst);
        ShaleWatchReceiver {
            shared: Arc::clone(&self.shared),
            seen: self.shared.version.load(Ordering::SeqCst),
        }
    }
}

impl<T: OptionalSend + OptionalSync> WatchReceiver<ShaleWatch, T> for ShaleWatchReceiver<T> {
    async fn changed(&mut self) -> Result<(), RecvError> {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            // Register before checking, so a send between the check and the await is
            // not missed.
            notified.as_mut().enable();
            let version = self.shared.version.load(Ordering::SeqCst);
            if version != self.seen {
                self.seen = version;
                return Ok(());
            }
            if self.shared.senders.load(Ordering::SeqCst) == 0 {
                return Err(RecvError(()));
            }
            notified.await;
        }
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.read()
    }

    fn borrow_and_update(&mut self) -> RwLockReadGuard<'_, T> {
        let guard = self.shared.read();
        self.seen = self.shared.version.load(Ordering::SeqCst);
        guard
    }
}
