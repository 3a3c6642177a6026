//! The HTTP front end: hyper 1 `serve_connection` (HTTP/1.1 keep-alive, `Expect:
//! 100-continue` answered when the handler first reads the body — after authentication)
//! on a TCP listener (madsim's in simulation), one task per connection spawned through
//! `common::env`, TCP_NODELAY, a request id (`x-amz-request-id`) and a tracing span per
//! request.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use common::env::{Env, JoinHandle};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tracing::Instrument as _;

use crate::auth::{Access, KeyAuth, KeyStore};
use crate::gateway::Gateway;

/// Largest XML request body (DeleteObjects with 1000 keys, CompleteMultipartUpload with
/// 10,000 parts).
pub const XML_MAX_BODY_BYTES: usize = 4 << 20;
/// Largest aws-chunked chunk buffered for its signature check.
pub const AWS_CHUNK_MAX_BYTES: usize = 8 << 20;

/// Builds the s3s service around a gateway: SigV4 with keys from the root group, our
/// access policy (owner, clock skew), limits, virtual-host addressing if configured.
pub fn build_service(gateway: Gateway) -> Result<S3Service, String> {
    let cfg = gateway.cfg.clone();
    let keys = Arc::new(KeyStore::new(
        gateway.meta.clone(),
        gateway.env.clock().clone(),
    ));
    let access = Access {
        keys: keys.clone(),
        meta: gateway.meta.clone(),
        clock: gateway.env.clock().clone(),
        max_skew: std::time::Duration::from_secs(cfg.max_clock_skew_secs),
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
    b.set_auth(KeyAuth(keys));
    b.set_access(access);
    if !cfg.virtual_host_domains.is_empty() {
        let host = s3s::host::MultiDomain::new(cfg.virtual_host_domains.iter().map(String::as_str))
            .map_err(|e| format!("virtual_host_domains: {e}"))?;
        b.set_host(host);
    }
    Ok(b.build())
}

/// Serves S3 on `listener` until `shutdown` resolves; then stops accepting and closes
/// the open connections.
pub async fn serve(
    env: Env,
    listener: TcpListener,
    service: S3Service,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and similar: log and keep serving.
                    tracing::warn!(error = %e, "accept failed");
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
        conns.push(env.spawn("s3-connection", async move {
            serve_connection(conn_env, stream, peer, svc).await;
        }));
    }
    for c in conns {
        c.abort();
    }
    Ok(())
}

async fn serve_connection(
    env: Env,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    svc: S3Service,
) {
    let env = Arc::new(env);
    let handler = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let svc = svc.clone();
        let id = format!("{:016X}", env.random_u64());
        let span =
            tracing::info_span!("s3", id = %id, method = %req.method(), path = %req.uri().path());
        async move {
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
    let r = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), handler)
        .await;
    if let Err(e) = r {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
