//! A minimal S3 client for simulation and benchmarks: SigV4 (header auth,
//! `UNSIGNED-PAYLOAD`) over HTTP/1.1 — one connection per request (`S3Client::send`) or a
//! kept-alive connection (`S3Conn`). It runs on tokio and on madsim's TCP. Independent of
//! the server code except for the date format; signing uses `s3s-sigv4`'s
//! canonical-request functions. Tests of S3 behaviour use real SDKs (tests/), not this.

use std::net::SocketAddr;

use bytes::Bytes;
use common::env::Env;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// One answer: status, headers, body.
#[derive(Clone, Debug)]
pub struct S3Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl S3Reply {
    /// The `<Code>` of an S3 error body, if any.
    pub fn error_code(&self) -> Option<String> {
        let text = std::str::from_utf8(&self.body).ok()?;
        let start = text.find("<Code>")? + "<Code>".len();
        let end = text[start..].find("</Code>")? + start;
        Some(text[start..end].to_owned())
    }
}

#[derive(Clone)]
pub struct S3Client {
    pub env: Env,
    pub endpoint: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// Seconds added to this client's clock when dating requests (skew experiments).
    pub skew_secs: i64,
}

impl S3Client {
    pub fn new(env: Env, endpoint: SocketAddr, access_key: &str, secret_key: &str) -> Self {
        S3Client {
            env,
            endpoint,
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            region: "us-east-1".into(),
            skew_secs: 0,
        }
    }

    /// Sends a signed request on a new connection. `path_and_query` is already
    /// URL-encoded; query values must not contain `&` or `=`.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<S3Reply, String> {
        let mut conn = self.connect().await?;
        conn.send(method, path_and_query, body, headers).await
    }

    /// Opens a keep-alive connection.
    pub async fn connect(&self) -> Result<S3Conn, String> {
        let stream = tokio::net::TcpStream::connect(self.endpoint)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let task = self.env.spawn("s3-client-conn", async move {
            let _ = conn.await;
        });
        Ok(S3Conn {
            client: self.clone(),
            sender,
            task,
        })
    }

    /// The `Authorization` header and the signed headers of a request.
    fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        body_len: usize,
        headers: &[(&str, &str)],
    ) -> Result<(String, Vec<(String, String)>), String> {
        let secs = i64::try_from(self.env.clock().unix_ms() / 1000).unwrap_or(0) + self.skew_secs;
        let date = crate::auth::format_amz_date(secs);
        let amz_date = s3s_sigv4::AmzDate::parse(&date).map_err(|e| format!("date: {e}"))?;
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let mut qs: Vec<(String, String)> = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect();
        qs.sort();
        let host = self.endpoint.to_string();
        let clen = body_len.to_string();
        let mut signed: Vec<(&str, &str)> = vec![
            ("host", host.as_str()),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-amz-date", date.as_str()),
        ];
        if method == "PUT" || method == "POST" {
            signed.push(("content-length", clen.as_str()));
        }
        for (k, v) in headers {
            signed.push((k, v));
        }
        signed.sort();
        let creq = s3s_sigv4::create_canonical_request(
            method,
            path,
            &qs,
            &signed,
            s3s_sigv4::Payload::Unsigned,
        );
        let sts = s3s_sigv4::create_string_to_sign(&creq, &amz_date, &self.region, "s3");
        let sig =
            s3s_sigv4::calculate_signature(&sts, &self.secret_key, &amz_date, &self.region, "s3");
        let names: Vec<&str> = signed.iter().map(|(k, _)| *k).collect();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/s3/aws4_request, SignedHeaders={}, Signature={sig}",
            self.access_key,
            &date[..8],
            self.region,
            names.join(";")
        );
        let signed = signed
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok((auth, signed))
    }
}

/// A kept-alive connection to the endpoint (closed on drop).
pub struct S3Conn {
    client: S3Client,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    task: common::env::JoinHandle<()>,
}

impl Drop for S3Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl S3Conn {
    /// Sends a signed request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: &str,
        path_and_query: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<S3Reply, String> {
        let (status, headers, incoming) = self
            .send_streaming(method, path_and_query, body, headers)
            .await?;
        let body = incoming
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(S3Reply {
            status,
            headers,
            body,
        })
    }

    /// Sends a signed request and returns the answer's status and headers with its body
    /// still streaming (read it to the end before the next request on this connection).
    pub async fn send_streaming(
        &mut self,
        method: &str,
        path_and_query: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, HeaderMap, hyper::body::Incoming), String> {
        let (auth, signed) = self
            .client
            .sign(method, path_and_query, body.len(), headers)?;
        let mut rb = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("authorization", auth);
        for (k, v) in &signed {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let req = rb
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let (parts, incoming) = resp.into_parts();
        Ok((parts.status, parts.headers, incoming))
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
