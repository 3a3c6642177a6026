//! Loopback addresses for tests and benchmarks that start servers in-process.
//!
//! The usual "bind port 0, read the port, drop the listener" trick can hand the same port
//! out twice in one process (the OS is free to reuse a released port), and two test
//! servers sharing an address silently become one: requests for one node reach the
//! other's store. `free_loopback_addr` never returns the same address twice in a process.
//! In simulation every test has its own simulated network, so addresses come from a
//! counter instead of the host's ports and do not depend on the machine.

use std::net::SocketAddr;

/// A loopback address no earlier call in this process returned. In production builds
/// the port was free on the host when it was chosen (another process may still take it
/// before the caller binds it; callers that must be sure should bind and keep the
/// listener).
pub fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    #[cfg(not(madsim))]
    {
        use std::collections::BTreeSet;
        use std::sync::Mutex;
        static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
        // Keep every listener bound until a fresh port turns up, so the OS cannot give
        // the same port back on the next try.
        let mut held = Vec::new();
        for _ in 0..1024 {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            let addr = l.local_addr()?;
            let fresh = HANDED_OUT
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(addr.port());
            if fresh {
                return Ok(addr);
            }
            held.push(l);
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "no loopback port this process has not already handed out",
        ))
    }
    #[cfg(madsim)]
    {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Ports 10000..32000 in turn: far above the lowest free ports that madsim hands
        // out for port 0, and a test process never needs more at once.
        let port = 10_000 + (n % 22_000) as u16;
        Ok(SocketAddr::from(([127, 0, 0, 1], port)))
    }
}
