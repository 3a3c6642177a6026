//! Optional TLS on the S3 endpoint: rustls (ring provider; TLS 1.3 and 1.2; ALPN
//! `http/1.1`) with one certificate chain and key read from the PEM files named by the
//! config's `tls_cert` / `tls_key`.
//!
//! Each accepted connection's first bytes tell a TLS ClientHello (record type 0x16) from
//! anything else. A TLS client gets the handshake (the bytes already read are replayed to
//! rustls); a plain-HTTP client on the HTTPS port gets an S3-style `400 InvalidRequest`
//! ("use https://") and the connection is closed. The caller bounds the whole exchange
//! (`ServeLimits::handshake_timeout`); a failed handshake is logged at debug and only
//! ends its own connection.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio_rustls::server::TlsStream;

use crate::GatewayConfig;

/// First byte of a TLS record carrying a handshake message (the ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// At most this much of a refused plain-HTTP request is read (and discarded) after the
/// answer, so closing does not reset the connection before the client reads the answer.
const REFUSED_DRAIN_BYTES: usize = 1 << 20;

/// A loaded TLS server configuration; cheap to clone.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// Why the certificate or key could not be used; names the config field and the file.
#[derive(Debug, thiserror::Error)]
#[error("{field} {path}: {message}")]
pub struct TlsError {
    pub field: &'static str,
    pub path: String,
    pub message: String,
}

fn tls_error(field: &'static str, path: &Path, message: impl Into<String>) -> TlsError {
    TlsError {
        field,
        path: path.display().to_string(),
        message: message.into(),
    }
}

impl Tls {
    /// The TLS setup of a gateway config: `None` when `tls_cert` / `tls_key` are unset
    /// (plain HTTP). The config must have passed `validate` (both or neither set).
    pub fn from_config(cfg: &GatewayConfig) -> Result<Option<Self>, TlsError> {
        match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(cert), Some(key)) => Self::load(Path::new(cert), Path::new(key)).map(Some),
            _ => Ok(None),
        }
    }

    /// Reads a PEM certificate chain (leaf first) and its PEM private key (PKCS#8,
    /// PKCS#1 or SEC1), and checks that they belong together.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let read = |field, path: &Path| {
            std::fs::read(path).map_err(|e| tls_error(field, path, format!("cannot read: {e}")))
        };
        let cert_pem = read("tls_cert", cert_path)?;
        let key_pem = read("tls_key", key_path)?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_error("tls_cert", cert_path, format!("invalid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(tls_error(
                "tls_cert",
                cert_path,
                "no certificate found (expected a PEM \"-----BEGIN CERTIFICATE-----\" block)",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            let message = match e {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    "no private key found (expected a PEM \"-----BEGIN PRIVATE KEY-----\", \
                     \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block)"
                        .to_string()
                }
                e => format!("invalid PEM: {e}"),
            };
            tls_error("tls_key", key_path, message)
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("tls_cert", cert_path, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| match e {
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                    tls_error("tls_cert", cert_path, format!("unusable certificate: {e}"))
                }
                rustls::Error::InconsistentKeys(_) => tls_error(
                    "tls_key",
                    key_path,
                    format!(
                        "does not match the certificate in tls_cert {}",
                        cert_path.display()
                    ),
                ),
                e => tls_error("tls_key", key_path, format!("unusable private key: {e}")),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
        })
    }

    /// Reads the connection's first bytes; a TLS client gets the handshake and the
    /// decrypted stream is returned; anything else is answered with a 400 telling the
    /// client to use https:// and closed (`None`, as is a failed handshake). Never
    /// panics; the caller bounds it in time.
    pub async fn accept<S>(&self, mut stream: S, peer: SocketAddr) -> Option<TlsStream<Replay<S>>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut first = vec![0u8; 4096];
        let n = match stream.read(&mut first).await {
            Ok(0) => {
                tracing::debug!(%peer, "connection closed before the TLS handshake");
                return None;
            }
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "reading the TLS ClientHello");
                return None;
            }
        };
        first.truncate(n);
        if first[0] != TLS_HANDSHAKE_RECORD {
            tracing::debug!(%peer, "plain HTTP (not TLS) on the HTTPS endpoint: refused");
            refuse_plain_http(stream).await;
            return None;
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&self.config));
        match acceptor.accept(Replay::new(first, stream)).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                None
            }
        }
    }
}

/// The answer to a plain-HTTP request on the HTTPS endpoint (an S3 error document).
const PLAIN_HTTP_BODY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidRequest</Code><Message>This S3 endpoint requires TLS: use https://</Message></Error>\n";

async fn refuse_plain_http<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_HTTP_BODY}",
        PLAIN_HTTP_BODY.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    // Read what the client still sends (bounded) until it closes: closing a socket with
    // unread input resets it, and the client could lose the answer.
    let mut sink = [0u8; 8192];
    let mut drained = 0;
    while drained < REFUSED_DRAIN_BYTES {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// A stream whose first bytes (already read while sniffing for TLS) are replayed before
/// the rest.
pub struct Replay<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Replay<S> {
    fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = (self.prefix.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "tls_test.rs"]
pub(crate) mod tls_test;
