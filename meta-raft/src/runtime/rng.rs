//! `RaftRng`: `common::env::Rng` behind rand 0.10's traits, for openraft's election
//! timeout jitter.

use std::convert::Infallible;

use rand::TryRng;

#[derive(Clone, Debug)]
pub struct RaftRng(common::env::Rng);

impl RaftRng {
    pub fn new(seed: u64) -> Self {
        Self(common::env::Rng::new(seed))
    }
}

impl TryRng for RaftRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}
