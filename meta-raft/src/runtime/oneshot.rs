//! Oneshot over `tokio::sync::oneshot`.

use openraft::rt::{Oneshot, OneshotSender, OptionalSend};

pub struct ShaleOneshot;

pub struct ShaleOneshotSender<T>(tokio::sync::oneshot::Sender<T>);

impl Oneshot for ShaleOneshot {
    type Sender<T: OptionalSend> = ShaleOneshotSender<T>;
    type Receiver<T: OptionalSend> = tokio::sync::oneshot::Receiver<T>;
    type ReceiverError = tokio::sync::oneshot::error::RecvError;

    fn channel<T: OptionalSend>() -> (Self::Sender<T>, Self::Receiver<T>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (ShaleOneshotSender(tx), rx)
    }
}

impl<T: OptionalSend> OneshotSender<T> for ShaleOneshotSender<T> {
    fn send(self, t: T) -> Result<(), T> {
        self.0.send(t)
    }
}
