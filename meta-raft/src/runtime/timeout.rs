//! `Timeout`: a nameable, `Send` timeout future (madsim's own `timeout` returns an
//! unnameable, non-`Send` future, which openraft's associated type cannot hold).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::env::Elapsed;

pub struct Timeout<F> {
    future: Pin<Box<F>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    within: Duration,
}

impl<F> Timeout<F> {
    pub(crate) fn new(future: F, sleep: tokio::time::Sleep, within: Duration) -> Self {
        Self {
            future: Box::pin(future),
            sleep: Box::pin(sleep),
            within,
        }
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The future first: a result that is ready at the deadline still counts.
        if let Poll::Ready(v) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(Elapsed(self.within)));
        }
        Poll::Pending
    }
}
