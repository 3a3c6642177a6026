//! The HTTP front end's connection limits, over real loopback TCP with an S3 service that
//! implements nothing (every request gets an S3 error; only connections matter here).

use std::time::Duration;

use common::env::Env;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

struct Nothing;
impl s3s::S3 for Nothing {}

async fn start(limits: ServeLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = S3ServiceBuilder::new(Nothing).build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let env = Env::seeded(1);
    env.clone().spawn("test-serve", async move {
        let _ = serve_with(
            env,
            listener,
            service,
            async {
                let _ = stopped.await;
            },
            limits,
        )
        .await;
    });
    (addr, stop)
}

/// Sends one request and reads its whole answer (a small S3 error with a length).
async fn request(s: &mut TcpStream) -> String {
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.expect("read");
        assert!(n > 0, "connection closed before the answer");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return text.into_owned();
            }
        }
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let (addr, _stop) = start(ServeLimits {
        max_connections: 8,
        idle_timeout: Duration::from_millis(100),
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let answer = request(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    // The server closes it: a read returns end-of-stream (bounded wait).
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the idle connection is closed within the bound")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let (addr, _stop) = start(ServeLimits {
        max_connections: 2,
        idle_timeout: Duration::from_secs(600),
    })
    .await;
    let mut a = TcpStream::connect(addr).await.expect("a");
    let mut b = TcpStream::connect(addr).await.expect("b");
    request(&mut a).await;
    request(&mut b).await;
    // A third client is accepted by the kernel but not served while two are open.
    let mut c = TcpStream::connect(addr).await.expect("c");
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf))
            .await
            .is_err(),
        "the third connection was served past the cap"
    );
    drop(a);
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .expect("served once a slot is free")
        .expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 "));
    // The open ones still work.
    request(&mut b).await;
}
