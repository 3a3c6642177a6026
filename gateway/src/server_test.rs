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
    start_with(limits, None).await
}

async fn start_with(
    limits: ServeLimits,
    tls: Option<Tls>,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
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
            tls,
        )
        .await;
    });
    (addr, stop)
}

/// Sends one request and reads its whole answer (a small S3 error with a length).
async fn request<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(s: &mut S) -> String {
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
        ..ServeLimits::default()
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
        ..ServeLimits::default()
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

// ---------------------------------------------------------------------------------------
// TLS.

/// A TLS server (self-signed for 127.0.0.1) and a client config that trusts it.
async fn start_tls(
    limits: ServeLimits,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio_rustls::TlsConnector,
) {
    let dir = crate::tls::tls_test::Dir::new();
    let (cert, key) = crate::tls::tls_test::self_signed();
    let tls = Tls::load(&dir.file("c.pem", &cert), &dir.file("k.pem", &key)).expect("tls");
    let (addr, stop) = start_with(limits, Some(tls)).await;
    (addr, stop, connector(&cert))
}

fn connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("pem")).expect("root");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
}

async fn tls_connect(
    addr: SocketAddr,
    c: &tokio_rustls::TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    c.connect(name, tcp).await
}

/// Reads until the server closes (bounded): the bytes, or `None` if it never closed.
async fn read_to_close(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
    r.ok().map(|_| got)
}

#[tokio::test]
async fn https_requests_are_served_over_keep_alive() {
    let (addr, _stop, c) = start_tls(ServeLimits::default()).await;
    let mut s = tls_connect(addr, &c).await.expect("handshake");
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    for _ in 0..3 {
        let answer = request(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
        assert!(answer.contains("x-amz-request-id"), "{answer}");
    }
}

#[tokio::test]
async fn plain_http_on_the_tls_port_gets_a_400_and_the_server_lives_on() {
    let (addr, _stop, c) = start_tls(ServeLimits::default()).await;

    // A plain-HTTP request: an S3 error telling the client to use https://, then close.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /bucket/key HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let got = read_to_close(&mut s)
        .await
        .expect("closed within the bound");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("<Code>InvalidRequest</Code>"), "{text}");
    assert!(text.contains("https://"), "{text}");

    // A plain-HTTP PUT with a body the server never reads is refused the same way.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"PUT /bucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
        .await
        .expect("write");
    let _ = s.write_all(&vec![b'x'; 200_000]).await;
    let got = read_to_close(&mut s)
        .await
        .expect("closed within the bound");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 400 "));

    // A TLS record header followed by garbage: the handshake fails, the connection closes.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        .await
        .expect("write");
    read_to_close(&mut s)
        .await
        .expect("closed within the bound");

    // A client that connects and goes away at once.
    drop(TcpStream::connect(addr).await.expect("connect"));

    // A TLS client that does not trust the certificate fails its handshake.
    let (other_cert, _) = crate::tls::tls_test::self_signed();
    assert!(tls_connect(addr, &connector(&other_cert)).await.is_err());

    // The server still serves HTTPS.
    let mut s = tls_connect(addr, &c)
        .await
        .expect("handshake after the failures");
    let answer = request(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let (addr, _stop, _c) = start_tls(ServeLimits {
        handshake_timeout: Duration::from_millis(200),
        ..ServeLimits::default()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let got = read_to_close(&mut s)
        .await
        .expect("the silent connection is closed within the bound");
    assert!(got.is_empty(), "{got:?}");
}
