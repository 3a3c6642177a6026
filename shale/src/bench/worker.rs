//! One `shale bench` worker: a kept-alive connection, the keys it alone writes (so it
//! knows exactly what each must hold), and the operations it times and verifies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::env::Env;
use gateway::client::{S3Client, S3Conn};
use http_body_util::BodyExt;
use md5::{Digest, Md5};

use super::content::{encode_query, key_name, xml_value, Content, Shape};
use super::report::Report;
use super::size_dist::SizeDist;

/// What all workers share.
pub struct Shared {
    pub client: S3Client,
    pub content: Content,
    pub bucket: String,
    pub prefix: String,
    pub prefixes: usize,
    pub sizes: SizeDist,
    pub part_size: usize,
    pub part_concurrency: usize,
    pub workers: usize,
    pub key_space: u64,
    pub progress: Progress,
}

/// Live counters for the progress line.
#[derive(Default)]
pub struct Progress {
    pub ops: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    pub corrupt: AtomicU64,
}

/// The operation kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Put,
    Get,
    Delete,
    /// One page of one prefix (mixed workloads).
    ListPage,
    /// A whole listing of the bench prefix, every page, checked against the key count.
    ListAll,
    Multipart,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "PUT",
            Op::Get => "GET",
            Op::Delete => "DELETE",
            Op::ListPage | Op::ListAll => "LIST",
            Op::Multipart => "MPU",
        }
    }
}

/// How one operation ended.
enum Outcome {
    Ok(u64),
    /// A GET of a key that must not exist answered 404.
    Miss,
    /// Wrong bytes, a phantom object or a lost one.
    Corrupt(String),
    Failed(String),
}

pub struct Worker {
    pub id: usize,
    env: Env,
    shared: Arc<Shared>,
    conn: Option<S3Conn>,
    /// The keys this worker owns (`i % workers == id`) that exist, with their shape.
    pub keys: BTreeMap<u64, Shape>,
    generation: u64,
    /// Position in the sequence of owned keys for sequential plans.
    cursor: u64,
    pub reports: BTreeMap<Op, Report>,
    /// The first few corruption descriptions (for the final message).
    pub corruption: Vec<String>,
}

impl Worker {
    pub fn new(id: usize, env: Env, shared: Arc<Shared>) -> Self {
        Worker {
            id,
            env,
            shared,
            conn: None,
            keys: BTreeMap::new(),
            generation: 0,
            cursor: 0,
            reports: BTreeMap::new(),
            corruption: Vec::new(),
        }
    }

    /// How many keys of the key space this worker owns.
    pub fn owned(&self) -> u64 {
        let (n, w) = (self.shared.key_space, self.shared.workers as u64);
        let id = self.id as u64;
        if id >= n {
            0
        } else {
            (n - id).div_ceil(w)
        }
    }

    /// The next owned key in order (cycling).
    pub fn next_key(&mut self) -> Option<u64> {
        let owned = self.owned();
        if owned == 0 {
            return None;
        }
        let j = self.cursor % owned;
        self.cursor += 1;
        Some(self.id as u64 + j * self.shared.workers as u64)
    }

    /// A random owned key.
    pub fn random_key(&mut self) -> Option<u64> {
        let owned = self.owned();
        if owned == 0 {
            return None;
        }
        Some(self.id as u64 + (self.env.random_u64() % owned) * self.shared.workers as u64)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn random(&self) -> u64 {
        self.env.random_u64()
    }

    pub fn reset_cursor(&mut self) {
        self.cursor = 0;
    }

    pub fn take_reports(&mut self) -> BTreeMap<Op, Report> {
        std::mem::take(&mut self.reports)
    }

    /// Runs one operation on key `key` (ignored by listings), timing and recording it.
    pub async fn run(&mut self, phase: &str, op: Op, key: u64) {
        let t0 = self.env.clock().now();
        let outcome = match op {
            Op::Put => self.put(key).await,
            Op::Get => self.get(key).await,
            Op::Delete => self.delete(key).await,
            Op::ListPage => self.list_page(key).await,
            Op::ListAll => self.list_all().await,
            Op::Multipart => self.multipart(key).await,
        };
        let latency = self.env.clock().now().saturating_duration_since(t0);
        let progress = &self.shared.progress;
        let r = self
            .reports
            .entry(op)
            .or_insert_with(|| Report::new(phase, op.name()));
        match outcome {
            Outcome::Ok(bytes) => {
                r.success(bytes, latency);
                progress.ops.fetch_add(1, Ordering::Relaxed);
                progress.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Outcome::Miss => {
                r.success(0, latency);
                r.misses += 1;
                progress.ops.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Corrupt(what) => {
                r.corrupt += 1;
                progress.corrupt.fetch_add(1, Ordering::Relaxed);
                if self.corruption.len() < 8 {
                    self.corruption.push(what);
                }
            }
            Outcome::Failed(code) => {
                r.error(code);
                progress.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn path(&self, key: u64) -> String {
        format!(
            "/{}/{}",
            self.shared.bucket,
            key_name(&self.shared.prefix, self.shared.prefixes, key)
        )
    }

    async fn conn(&mut self) -> Result<&mut S3Conn, String> {
        if self.conn.is_none() {
            self.conn = Some(self.shared.client.connect().await?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| "no connection".to_string())
    }

    /// Sends a request with a small answer; a transport failure drops the connection.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<gateway::client::S3Reply, String> {
        // A kept-alive connection the server closed meanwhile (idle timeout) fails
        // before the request is sent ("connection: ..."): reconnect once, as SDKs do.
        for attempt in 0..2 {
            let conn = self.conn().await.map_err(|_| "connect".to_string())?;
            match conn.send(method, path, body.clone(), &[]).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    self.conn = None;
                    if attempt > 0 || !e.starts_with("connection:") {
                        return Err("transport".into());
                    }
                }
            }
        }
        Err("transport".into())
    }

    fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        (self.id as u64) << 40 | self.generation
    }

    async fn put(&mut self, key: u64) -> Outcome {
        let generation = self.next_generation();
        let size = self.shared.sizes.sample(self.env.random_u64());
        let body = self.shared.content.window(key, generation, 0, size);
        let path = self.path(key);
        match self.request("PUT", &path, body).await {
            Ok(r) if r.status.is_success() => {
                self.keys.insert(
                    key,
                    Shape {
                        generation,
                        size,
                        part: None,
                    },
                );
                Outcome::Ok(size as u64)
            }
            // A failed PUT may or may not have happened: this key is not verified again
            // until it is written successfully.
            Ok(r) => {
                self.keys.remove(&key);
                Outcome::Failed(code_of(&r))
            }
            Err(e) => {
                self.keys.remove(&key);
                Outcome::Failed(e)
            }
        }
    }

    async fn delete(&mut self, key: u64) -> Outcome {
        let path = self.path(key);
        match self.request("DELETE", &path, Bytes::new()).await {
            Ok(r) if r.status.is_success() => {
                self.keys.remove(&key);
                Outcome::Ok(0)
            }
            Ok(r) => Outcome::Failed(code_of(&r)),
            Err(e) => Outcome::Failed(e),
        }
    }

    /// GET, streaming the body and comparing it with what this worker wrote.
    async fn get(&mut self, key: u64) -> Outcome {
        let path = self.path(key);
        let want = self.keys.get(&key).copied();
        let conn = match self.conn().await {
            Ok(c) => c,
            Err(_) => return Outcome::Failed("connect".into()),
        };
        let (status, _, mut body) = match conn.send_streaming("GET", &path, Bytes::new(), &[]).await
        {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                return Outcome::Failed("transport".into());
            }
        };
        if !status.is_success() {
            let Ok(collected) = body.collect().await else {
                self.conn = None;
                return Outcome::Failed("transport".into());
            };
            let reply = gateway::client::S3Reply {
                status,
                headers: http::HeaderMap::new(),
                body: collected.to_bytes(),
            };
            let code = code_of(&reply);
            return match (want, code.as_str()) {
                (None, "NoSuchKey") => Outcome::Miss,
                (Some(_), "NoSuchKey") => {
                    Outcome::Corrupt(format!("{path}: acknowledged object answered NoSuchKey"))
                }
                _ => Outcome::Failed(code),
            };
        }
        let mut pos = 0usize;
        let mut bad: Option<String> = None;
        loop {
            let frame = match body.frame().await {
                None => break,
                Some(Ok(f)) => f,
                Some(Err(_)) => {
                    self.conn = None;
                    return Outcome::Failed("transport (body)".into());
                }
            };
            let Ok(mut data) = frame.into_data() else {
                continue;
            };
            let Some(shape) = want else {
                pos += data.len();
                continue;
            };
            while !data.is_empty() && bad.is_none() {
                if pos + data.len() > shape.size {
                    bad = Some(format!("{path}: more than {} bytes", shape.size));
                    break;
                }
                let expected = self.shared.content.expected(key, &shape, pos, data.len());
                let n = expected.len();
                if data[..n] != *expected {
                    bad = Some(format!("{path}: bytes differ in [{pos}, {})", pos + n));
                }
                pos += n;
                data = data.slice(n..);
            }
            pos += data.len();
        }
        match want {
            None => Outcome::Corrupt(format!("{path}: deleted object answered 200")),
            Some(_) if bad.is_some() => Outcome::Corrupt(bad.unwrap_or_default()),
            Some(shape) if pos != shape.size => {
                Outcome::Corrupt(format!("{path}: {pos} bytes, {} written", shape.size))
            }
            Some(shape) => Outcome::Ok(shape.size as u64),
        }
    }

    /// One page (max 1000 keys) of the prefix of key `key`.
    async fn list_page(&mut self, key: u64) -> Outcome {
        let p = key % self.shared.prefixes.max(1) as u64;
        let prefix = format!("{}p{p:03}/", self.shared.prefix);
        let path = format!(
            "/{}?list-type=2&max-keys=1000&prefix={}",
            self.shared.bucket,
            encode_query(&prefix)
        );
        match self.request("GET", &path, Bytes::new()).await {
            Ok(r) if r.status.is_success() => Outcome::Ok(0),
            Ok(r) => Outcome::Failed(code_of(&r)),
            Err(e) => Outcome::Failed(e),
        }
    }

    /// The whole bench prefix, page by page; the number of keys must be the key space.
    async fn list_all(&mut self) -> Outcome {
        let mut token: Option<String> = None;
        let mut keys = 0u64;
        loop {
            let mut path = format!(
                "/{}?list-type=2&max-keys=1000&prefix={}",
                self.shared.bucket,
                encode_query(&self.shared.prefix)
            );
            if let Some(t) = &token {
                path.push_str("&continuation-token=");
                path.push_str(&encode_query(t));
            }
            let r = match self.request("GET", &path, Bytes::new()).await {
                Ok(r) if r.status.is_success() => r,
                Ok(r) => return Outcome::Failed(code_of(&r)),
                Err(e) => return Outcome::Failed(e),
            };
            let text = String::from_utf8_lossy(&r.body);
            keys += text.matches("<Key>").count() as u64;
            match xml_value(&text, "NextContinuationToken") {
                Some(t) if xml_value(&text, "IsTruncated") == Some("true") => {
                    token = Some(t.to_string());
                }
                _ => break,
            }
        }
        if keys == self.shared.key_space {
            Outcome::Ok(0)
        } else {
            Outcome::Corrupt(format!(
                "listing found {keys} keys, {} were written",
                self.shared.key_space
            ))
        }
    }

    /// A multipart upload of one object (parts sent `part_concurrency` at a time, each
    /// on its own connection); the ETag of the completed object must be the MD5 of the
    /// parts' MD5s with `-N`.
    async fn multipart(&mut self, key: u64) -> Outcome {
        let generation = self.next_generation();
        let size = self.shared.sizes.sample(self.env.random_u64());
        let part = self.shared.part_size.max(1);
        let parts = size.div_ceil(part).max(1);
        let path = self.path(key);
        self.keys.remove(&key);
        let upload = match self
            .request("POST", &format!("{path}?uploads"), Bytes::new())
            .await
        {
            Ok(r) if r.status.is_success() => {
                match xml_value(&String::from_utf8_lossy(&r.body), "UploadId") {
                    Some(id) => id.to_string(),
                    None => return Outcome::Failed("no UploadId".into()),
                }
            }
            Ok(r) => return Outcome::Failed(code_of(&r)),
            Err(e) => return Outcome::Failed(e),
        };
        let shared = Arc::clone(&self.shared);
        let uploads = (0..parts).map(|j| {
            let shared = Arc::clone(&shared);
            let path = format!(
                "{path}?partNumber={}&uploadId={}",
                j + 1,
                encode_query(&upload)
            );
            async move {
                let len = part.min(size - j * part);
                let body = shared.content.window(key, generation, j as u64, len);
                let md5 = Md5::digest(&body);
                match shared.client.send("PUT", &path, body, &[]).await {
                    Ok(r) if r.status.is_success() => {
                        let etag = r
                            .headers
                            .get("etag")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .trim_matches('"')
                            .to_string();
                        if etag != hex::encode(md5) {
                            return Err(format!("part {} ETag {etag}", j + 1));
                        }
                        Ok(md5)
                    }
                    Ok(r) => Err(code_of(&r)),
                    Err(_) => Err("transport".to_string()),
                }
            }
        });
        use futures::StreamExt;
        let results: Vec<Result<_, String>> = futures::stream::iter(uploads)
            .buffered(self.shared.part_concurrency.max(1))
            .collect()
            .await;
        let mut md5s = Vec::with_capacity(parts);
        for r in results {
            match r {
                Ok(m) => md5s.push(m),
                Err(e) => {
                    self.abort(&path, &upload).await;
                    return Outcome::Failed(e);
                }
            }
        }
        let mut xml = String::from("<CompleteMultipartUpload>");
        let mut all = Vec::with_capacity(16 * parts);
        for (j, m) in md5s.iter().enumerate() {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag></Part>",
                j + 1,
                hex::encode(m)
            ));
            all.extend_from_slice(m);
        }
        xml.push_str("</CompleteMultipartUpload>");
        let want = format!("{}-{parts}", hex::encode(Md5::digest(&all)));
        let complete = format!("{path}?uploadId={}", encode_query(&upload));
        match self.request("POST", &complete, Bytes::from(xml)).await {
            Ok(r) if r.status.is_success() => {
                let text = String::from_utf8_lossy(&r.body);
                if let Some(code) = xml_value(&text, "Code") {
                    return Outcome::Failed(code.to_string());
                }
                let etag = xml_value(&text, "ETag")
                    .unwrap_or("")
                    .replace("&quot;", "")
                    .replace('"', "");
                if etag != want {
                    return Outcome::Corrupt(format!("{path}: ETag {etag}, expected {want}"));
                }
                self.keys.insert(
                    key,
                    Shape {
                        generation,
                        size,
                        part: Some(part),
                    },
                );
                Outcome::Ok(size as u64)
            }
            Ok(r) => {
                self.abort(&path, &upload).await;
                Outcome::Failed(code_of(&r))
            }
            Err(e) => Outcome::Failed(e),
        }
    }

    async fn abort(&mut self, path: &str, upload: &str) {
        let p = format!("{path}?uploadId={}", encode_query(upload));
        let _ = self.request("DELETE", &p, Bytes::new()).await;
    }
}

/// The S3 error code of an answer, or its HTTP status.
pub fn code_of(r: &gateway::client::S3Reply) -> String {
    r.error_code()
        .unwrap_or_else(|| format!("HTTP {}", r.status.as_u16()))
}
