//! Bounded mpsc over `tokio::sync::mpsc` (deterministic under madsim: FIFO wakeups).

use std::future::Future;

use futures::TryFutureExt;
use openraft::rt::{
    Mpsc, MpscReceiver, MpscSender, MpscWeakSender, OptionalSend, SendError, TryRecvError,
};
use tokio::sync::mpsc;

pub struct ShaleMpsc;

pub struct ShaleMpscSender<T>(mpsc::Sender<T>);
pub struct ShaleMpscReceiver<T>(mpsc::Receiver<T>);
pub struct ShaleMpscWeakSender<T>(mpsc::WeakSender<T>);

impl<T> Clone for ShaleMpscSender<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Clone for ShaleMpscWeakSender<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Mpsc for ShaleMpsc {
    type Sender<T: OptionalSend> = ShaleMpscSender<T>;
    type Receiver<T: OptionalSend> = ShaleMpscReceiver<T>;
    type WeakSender<T: OptionalSend> = ShaleMpscWeakSender<T>;

    fn channel<T: OptionalSend>(buffer: usize) -> (Self::Sender<T>, Self::Receiver<T>) {
        let (tx, rx) = mpsc::channel(buffer);
        (ShaleMpscSender(tx), ShaleMpscReceiver(rx))
    }
}

impl<T: OptionalSend> MpscSender<ShaleMpsc, T> for ShaleMpscSender<T> {
    fn send(&self, msg: T) -> impl Future<Output = Result<(), SendError<T>>> + OptionalSend {
        self.0.send(msg).map_err(|e| SendError(e.0))
    }

    fn downgrade(&self) -> ShaleMpscWeakSender<T> {
        ShaleMpscWeakSender(self.0.downgrade())
    }
}

impl<T: OptionalSend> MpscReceiver<T> for ShaleMpscReceiver<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + OptionalSend {
        self.0.recv()
    }

    fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.0.try_recv().map_err(|e| match e {
            mpsc::error::TryRecvError::Empty => TryRecvError::Empty,
            mpsc::error::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }
}

impl<T: OptionalSend> MpscWeakSender<ShaleMpsc, T> for ShaleMpscWeakSender<T> {
    fn upgrade(&self) -> Option<ShaleMpscSender<T>> {
        self.0.upgrade().map(ShaleMpscSender)
    }
}
