//! The HTTP front end: hyper 1 `serve_connection` (HTTP/1.1 keep-alive, `Expect:
//! 100-continue` answered when the handler first reads the body — after authentication)
//! on a TCP listener (madsim's in simulation), one task per connection spawned through
//! `common::env`, TCP_NODELAY, a request id (`x-amz-request-id`) and a tracing span per
//! request. At most `max_connections` connections are served at once (then accepting
//! pauses), and a keep-alive connection idle for `idle_timeout` is closed gracefully
//! ([`ServeLimits`]): file descriptors and tasks stay bounded whatever clients do.
//! With a [`Tls`] setup each accepted stream goes through the TLS handshake first
//! (`tls.rs`, bounded by `handshake_timeout`; a failed one ends only its connection).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::env::{Env, JoinHandle};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::activity_io::ActivityIo;
use crate::auth::{Access, KeyAuth, KeyStore};
use crate::gateway::Gateway;
use crate::range_route::IgnoreInvalidRange;
use crate::tls::Tls;

/// Largest XML request body (DeleteObjects with 1000 keys, CompleteMultipartUpload with
/// 10,000 parts).
pub const XML_MAX_BODY_BYTES: usize = 4 << 20;
/// Largest aws-chunked chunk buffered for its signature check.
pub const AWS_CHUNK_MAX_BYTES: usize = 8 << 20;

/// Builds the s3s service around a gateway: SigV4 with keys from the root group, our
/// access policy (owner, clock skew), limits, virtual-host addressing if configured, and
/// the route that ignores an invalid `Range` header (`range_route.rs`): it forwards such
/// a request, once its signature is verified, to a second service over the same gateway.
pub fn build_service(gateway: Gateway) -> Result<S3Service, String> {
    let keys = Arc::new(KeyStore::new(
        gateway.meta.clone(),
        gateway.env.clock().clone(),
    ));
    let inner = service_builder(gateway.clone(), &keys, true)?.build();
    let mut b = service_builder(gateway, &keys, false)?;
    b.set_route(IgnoreInvalidRange { inner });
    Ok(b.build())
}

/// One s3s service over `gateway`; `trust_forwarded`: for the service behind
/// [`IgnoreInvalidRange`] only.
fn service_builder(
    gateway: Gateway,
    keys: &Arc<KeyStore>,
    trust_forwarded: bool,
) -> Result<S3ServiceBuilder, String> {
    let cfg = gateway.cfg.clone();
    let access = Access {
        keys: keys.clone(),
        meta: gateway.meta.clone(),
        clock: gateway.env.clock().clone(),
        max_skew: std::time::Duration::from_secs(cfg.max_clock_skew_secs),
        trust_forwarded,
    };
    let mut s3cfg = s3s::config::S3Config::default();
    s3cfg.xml_max_body_size = XML_MAX_BODY_BYTES;
    s3cfg.put_object_max_size = Some(cfg.max_object_bytes);
    s3cfg.aws_chunked_stream_max_chunk_size = AWS_CHUNK_MAX_BYTES;
    s3cfg.post_object_max_file_size = cfg.max_object_bytes;
    s3cfg.presigned_url_max_skew_time_secs =
        u32::try_from(cfg.max_clock_skew_secs).unwrap_or(u32::MAX);
    let mut b = S3ServiceBuilder::new(gateway);
    b.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
        s3cfg,
    ))));
    b.set_auth(KeyAuth(keys.clone()));
    b.set_access(access);
    if !cfg.virtual_host_domains.is_empty() {
        let host = s3s::host::MultiDomain::new(cfg.virtual_host_domains.iter().map(String::as_str))
            .map_err(|e| format!("virtual_host_domains: {e}"))?;
        b.set_host(host);
    }
    Ok(b)
}

/// Limits of the HTTP front end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once; beyond it the gateway stops accepting (new clients
    /// wait in the kernel's backlog) until one closes. Bounds fds and tasks.
    pub max_connections: usize,
    /// A kept-alive connection with no bytes moving and no request in progress for this
    /// long (up to twice this, as it is checked once per period) is closed gracefully.
    pub idle_timeout: Duration,
    /// With TLS: bound on a new connection's first bytes plus its handshake.
    pub handshake_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves S3 over plain HTTP on `listener` until `shutdown` resolves; then stops
/// accepting and closes the open connections. Default [`ServeLimits`].
pub async fn serve(
    env: Env,
    listener: TcpListener,
    service: S3Service,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(
        env,
        listener,
        service,
        shutdown,
        ServeLimits::default(),
        None,
    )
    .await
}

/// [`serve`] with explicit limits, over HTTPS when `tls` is given.
pub async fn serve_with(
    env: Env,
    listener: TcpListener,
    service: S3Service,
    shutdown: impl Future<Output = ()>,
    limits: ServeLimits,
    tls: Option<Tls>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let permit = tokio::select! {
            biased; // deterministic under madsim: no unseeded branch choice
            () = &mut shutdown => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
        };
        let (stream, peer) = tokio::select! {
            biased; // deterministic under madsim: no unseeded branch choice
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and similar: log, back off (instead of
                    // spinning on a failing accept), keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    env.clock().sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
        conns.retain(|h| !h.is_finished());
        let svc = service.clone();
        let conn_env = env.fork();
        let tls = tls.clone();
        conns.push(env.spawn("s3-connection", async move {
            let _permit = permit;
            let Some(tls) = tls else {
                serve_connection(conn_env, stream, peer, svc, limits.idle_timeout).await;
                return;
            };
            let stream = tokio::select! {
                biased; // deterministic under madsim: no unseeded branch choice
                s = tls.accept(stream, peer) => s,
                () = conn_env.clock().sleep(limits.handshake_timeout) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    None
                }
            };
            if let Some(stream) = stream {
                serve_connection(conn_env, stream, peer, svc, limits.idle_timeout).await;
            }
        }));
    }
    for c in conns {
        c.abort();
    }
    Ok(())
}

/// Pause after a failed `accept` (EMFILE and the like).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Decrements the in-flight request count when a request's handler finishes or is
/// dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn start(n: &Arc<AtomicUsize>) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(n))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection<S>(
    env: Env,
    stream: S,
    peer: SocketAddr,
    svc: S3Service,
    idle_timeout: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let env = Arc::new(env);
    let activity = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let handler_env = Arc::clone(&env);
    let handler_in_flight = Arc::clone(&in_flight);
    let handler = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let svc = svc.clone();
        let id = format!("{:016X}", handler_env.random_u64());
        let span =
            tracing::info_span!("s3", id = %id, method = %req.method(), path = %req.uri().path());
        let guard = InFlight::start(&handler_in_flight);
        async move {
            let _guard = guard;
            let mut resp = hyper::service::Service::call(&svc, req).await?;
            tracing::debug!(status = resp.status().as_u16(), "done");
            if let Ok(v) = http::HeaderValue::from_str(&id) {
                resp.headers_mut().insert("x-amz-request-id", v.clone());
                resp.headers_mut().insert("x-amz-id-2", v);
            }
            Ok::<_, s3s::HttpError>(resp)
        }
        .instrument(span)
    });
    let io = TokioIo::new(ActivityIo::new(stream, Arc::clone(&activity)));
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, handler);
    tokio::pin!(conn);
    let mut seen = activity.load(Ordering::Relaxed);
    let mut closing = false;
    let r = loop {
        tokio::select! {
            biased; // deterministic under madsim: no unseeded branch choice
            r = conn.as_mut() => break r,
            () = env.clock().sleep(idle_timeout), if !closing => {
                let now = activity.load(Ordering::Relaxed);
                if now == seen && in_flight.load(Ordering::Relaxed) == 0 {
                    tracing::debug!(%peer, "closing an idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                seen = now;
            }
        }
    };
    if let Err(e) = r {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

// Real loopback TCP; the madsim build covers serving through sim/tests/gateway.rs.
#[cfg(all(test, not(madsim)))]
#[path = "server_test.rs"]
mod server_test;
