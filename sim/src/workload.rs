//! The workload: simulated S3 clients sending signed requests over a small key space
//! (so writes collide), each request recorded with its invocation and completion time.
//!
//! A request's answer is classified once, here: 2xx / 404 / 412 are definite answers;
//! another 4xx, or a connection that could not even be opened, means the request had no
//! effect (`Failed`); a timeout, a 5xx or a connection lost mid-request means a write may
//! or may not have happened (`Unknown`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::env::{Env, Instant};
use gateway::client::{S3Client, S3Reply};

use crate::cluster::BUCKET;
use crate::history::{
    make_body, multipart_part_lens, Op, Phase, Request, Response, WriteId, FINAL_CLIENT,
};
use crate::scenario::Workload;

/// Shared, append-only record of completed requests.
pub type Recorder = Arc<Mutex<Vec<Op>>>;

/// The run's time origin and phase boundaries (simulated time).
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    pub origin: Instant,
    pub safety_end: Instant,
    pub liveness_start: Instant,
    pub liveness_end: Instant,
}

impl Timeline {
    pub fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

pub fn key_name(i: usize) -> String {
    format!("k{i}")
}

/// One client: its S3 clients (one per gateway) and where it records.
pub struct Client {
    pub id: u32,
    pub env: Env,
    pub s3: Vec<S3Client>,
    pub workload: Workload,
    pub timeline: Timeline,
    pub recorder: Recorder,
    /// Planted: flip a byte of every fifth GET body on its way back.
    pub corrupt_gets: bool,
}

impl Client {
    /// Runs the safety phase, waits out recovery, runs the liveness phase.
    pub async fn run(self) {
        let clock = self.env.clock().clone();
        let mut next_write: u64 = 0;
        let w = &self.workload;
        let timeout_s = Duration::from_secs_f64(w.op_timeout_secs);
        let timeout_l = Duration::from_secs_f64(w.liveness_timeout_secs);
        while clock.now() < self.timeline.safety_end {
            let req = self.draw_request(&mut next_write);
            self.perform(req, Phase::Safety, timeout_s).await;
            self.think().await;
        }
        clock.sleep_until(self.timeline.liveness_start).await;
        while clock.now() < self.timeline.liveness_end {
            let req = self.draw_request(&mut next_write);
            self.perform(req, Phase::Liveness, timeout_l).await;
            self.think().await;
        }
    }

    async fn think(&self) {
        let [lo, hi] = self.workload.think_ms;
        let ms = self.env.with_rng(|r| r.range_inclusive(lo, hi));
        self.env.clock().sleep(Duration::from_millis(ms)).await;
    }

    fn draw_request(&self, next_write: &mut u64) -> Request {
        let w = &self.workload;
        let (key_i, len, pick) = self.env.with_rng(|r| {
            let key_i = r.below(w.keys as u64) as usize;
            let len = r.range_inclusive(w.body_bytes[0] as u64, w.body_bytes[1] as u64) as usize;
            (key_i, len, r.below(u64::from(w.mix.total())) as u32)
        });
        let key = key_name(key_i);
        let m = &w.mix;
        let mut wid = || -> WriteId {
            *next_write += 1;
            (u64::from(self.id) + 1) << 32 | *next_write
        };
        let mut acc = 0;
        let mut under = |weight: u32| {
            acc += weight;
            pick < acc
        };
        if under(m.put) {
            Request::Put {
                key,
                wid: wid(),
                len,
            }
        } else if under(m.put_if_absent) {
            Request::PutIfAbsent {
                key,
                wid: wid(),
                len,
            }
        } else if under(m.get) {
            Request::Get { key }
        } else if under(m.head) {
            Request::Head { key }
        } else if under(m.delete) {
            Request::Delete { key }
        } else if under(m.list) {
            Request::List
        } else if under(m.multipart) {
            Request::Multipart {
                key,
                wid: wid(),
                len,
            }
        } else {
            Request::MultipartAbort {
                key,
                wid: wid(),
                len,
            }
        }
    }

    /// Sends `req` through a random gateway and records it.
    pub async fn perform(&self, req: Request, phase: Phase, timeout: Duration) -> Response {
        let gw = self.env.with_rng(|r| r.below(self.s3.len() as u64)) as usize;
        let corrupt = self.corrupt_gets.then_some(&self.env);
        perform_with(
            &self.s3[gw],
            self.id,
            &self.timeline,
            &self.recorder,
            req,
            phase,
            timeout,
            corrupt,
        )
        .await
    }
}

/// Sends one request, classifies the answer, records the op.
pub async fn perform(
    s3: &S3Client,
    client: u32,
    timeline: &Timeline,
    recorder: &Recorder,
    req: Request,
    phase: Phase,
    timeout: Duration,
) -> Response {
    perform_with(s3, client, timeline, recorder, req, phase, timeout, None).await
}

/// `perform`, with the planted corruption of GET bodies when `corrupt` holds the env
/// whose random stream picks the victims.
#[allow(clippy::too_many_arguments)]
async fn perform_with(
    s3: &S3Client,
    client: u32,
    timeline: &Timeline,
    recorder: &Recorder,
    req: Request,
    phase: Phase,
    timeout: Duration,
    corrupt: Option<&Env>,
) -> Response {
    let clock = s3.env.clock().clone();
    let invoke = clock.now();
    let mut resp = match clock.timeout(timeout, send(s3, &req)).await {
        Ok(r) => r,
        Err(_) => Response::Unknown(format!("timed out after {timeout:?}")),
    };
    if let (Some(env), Response::Body(b)) = (corrupt, &resp) {
        if !b.is_empty() && env.with_rng(|r| r.below(5)) == 0 {
            let mut v = b.to_vec();
            let i = env.with_rng(|r| r.below(v.len() as u64)) as usize;
            v[i] ^= 0x20;
            resp = Response::Body(v.into());
        }
    }
    let complete = clock.now();
    recorder.lock().unwrap_or_else(|e| e.into_inner()).push(Op {
        id: 0,
        client,
        phase,
        invoke_ns: timeline.ns(invoke),
        complete_ns: timeline.ns(complete),
        req,
        resp: resp.clone(),
    });
    resp
}

async fn send(s3: &S3Client, req: &Request) -> Response {
    let path = |key: &str| format!("/{BUCKET}/{key}");
    let result = match req {
        Request::Multipart { key, wid, len } => return multipart(s3, key, *wid, *len).await,
        Request::MultipartAbort { key, wid, len } => {
            return multipart_abort(s3, key, *wid, *len).await
        }
        Request::Put { key, wid, len } => {
            s3.send("PUT", &path(key), make_body(key, *wid, *len), &[])
                .await
        }
        Request::PutIfAbsent { key, wid, len } => {
            s3.send(
                "PUT",
                &path(key),
                make_body(key, *wid, *len),
                &[("if-none-match", "*")],
            )
            .await
        }
        Request::Get { key } => s3.send("GET", &path(key), Bytes::new(), &[]).await,
        Request::Head { key } => s3.send("HEAD", &path(key), Bytes::new(), &[]).await,
        Request::Delete { key } => s3.send("DELETE", &path(key), Bytes::new(), &[]).await,
        Request::List => {
            s3.send("GET", &format!("/{BUCKET}?list-type=2"), Bytes::new(), &[])
                .await
        }
    };
    match result {
        Ok(reply) => classify(req, &reply),
        // Nothing was sent if the connection never opened.
        Err(e) if e.starts_with("connect:") || e.starts_with("handshake:") => Response::Failed(e),
        Err(e) => Response::Unknown(e),
    }
}

/// A multipart upload of `make_body(key, wid, len)` cut into the parts
/// `multipart_part_lens` says (2 or 3 when the body is long enough), uploaded
/// concurrently; one part number is uploaded twice, wrong bytes first, so the complete
/// must take the last upload of it (its ETag is the one the complete names). Anything
/// failing before the complete is sent had no effect on the key (the upload is aborted,
/// best effort); the complete's answer decides the rest.
async fn multipart(s3: &S3Client, key: &str, wid: WriteId, len: usize) -> Response {
    let path = &format!("/{BUCKET}/{key}");
    let not_sent = |e: String| Response::Failed(format!("before complete: {e}"));
    let created = match s3
        .send("POST", &format!("{path}?uploads"), Bytes::new(), &[])
        .await
    {
        Ok(r) if r.status.as_u16() == 200 => r,
        Ok(r) => return not_sent(format!("create {}", r.status.as_u16())),
        Err(e) => return not_sent(format!("create {e}")),
    };
    let Some(upload) = xml_value(&String::from_utf8_lossy(&created.body), "UploadId") else {
        return not_sent("create: no UploadId".into());
    };
    let upload = encode_query(&upload);
    let abort = || async {
        let _ = s3
            .send(
                "DELETE",
                &format!("{path}?uploadId={upload}"),
                Bytes::new(),
                &[],
            )
            .await;
    };
    let body = make_body(key, wid, len);
    let parts = split_parts(&body, wid);
    // Which part number is uploaded twice, and whether its wrong bytes are also of
    // another length (the manifest must take the size of the last upload too).
    let mut state = wid ^ 0xd0b1_ed0b_1ed0_b1ed;
    let twice = (common::env::splitmix64(&mut state) % parts.len() as u64) as usize;
    let longer = common::env::splitmix64(&mut state) % 2 == 1;
    let upload_part = |n: usize, bytes: Bytes| {
        let query = format!("{path}?partNumber={n}&uploadId={upload}");
        async move {
            match s3.send("PUT", &query, bytes, &[]).await {
                Ok(r) if r.status.as_u16() == 200 => Ok(header_etag(&r).unwrap_or_default()),
                Ok(r) => Err(format!("part {n} {}", r.status.as_u16())),
                Err(e) => Err(format!("part {n} {e}")),
            }
        }
    };
    let uploads = parts.iter().enumerate().map(|(i, part)| {
        let upload_part = &upload_part;
        async move {
            if i == twice {
                let mut wrong: Vec<u8> = part.iter().map(|b| b ^ 0xa5).collect();
                if longer {
                    wrong.extend_from_slice(b"not the part's bytes");
                }
                upload_part(i + 1, wrong.into()).await?;
            }
            upload_part(i + 1, part.clone()).await
        }
    });
    let etags = match futures::future::join_all(uploads)
        .await
        .into_iter()
        .collect::<Result<Vec<String>, String>>()
    {
        Ok(etags) => etags,
        Err(e) => {
            abort().await;
            return not_sent(e);
        }
    };
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (i, etag) in etags.iter().enumerate() {
        xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>\"{etag}\"</ETag></Part>",
            i + 1
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    match s3
        .send(
            "POST",
            &format!("{path}?uploadId={upload}"),
            Bytes::from(xml),
            &[],
        )
        .await
    {
        Ok(r) if r.status.as_u16() == 200 => {
            let text = String::from_utf8_lossy(&r.body);
            match (xml_value(&text, "Code"), xml_value(&text, "ETag")) {
                (None, Some(etag)) => Response::Written {
                    etag: etag
                        .replace("&quot;", "")
                        .replace("&#34;", "")
                        .replace('"', ""),
                },
                (code, _) => Response::Unknown(format!("complete: 200 with {code:?}")),
            }
        }
        Ok(r) if r.status.as_u16() >= 500 => Response::Unknown(format!(
            "complete: {} {}",
            r.status.as_u16(),
            r.error_code().unwrap_or_default()
        )),
        Ok(r) => {
            abort().await;
            Response::Failed(format!(
                "complete: {} {}",
                r.status.as_u16(),
                r.error_code().unwrap_or_default()
            ))
        }
        Err(e) if e.starts_with("connect:") || e.starts_with("handshake:") => {
            Response::Failed(format!("complete not sent: {e}"))
        }
        Err(e) => Response::Unknown(format!("complete: {e}")),
    }
}

/// `body` cut into the parts `multipart_part_lens` says.
fn split_parts(body: &Bytes, wid: WriteId) -> Vec<Bytes> {
    let mut at = 0;
    multipart_part_lens(wid, body.len())
        .into_iter()
        .map(|l| {
            at += l;
            body.slice(at - l..at)
        })
        .collect()
}

/// A multipart upload that uploads its parts (concurrently, cut as in `multipart`) and
/// aborts: `Deleted` once the abort is acknowledged. It never takes effect whatever
/// happens (no complete is ever sent); its parts' fragments are the GC's.
async fn multipart_abort(s3: &S3Client, key: &str, wid: WriteId, len: usize) -> Response {
    let path = &format!("/{BUCKET}/{key}");
    let created = match s3
        .send("POST", &format!("{path}?uploads"), Bytes::new(), &[])
        .await
    {
        Ok(r) if r.status.as_u16() == 200 => r,
        Ok(r) => return Response::Failed(format!("create {}", r.status.as_u16())),
        Err(e) => return Response::Failed(format!("create {e}")),
    };
    let Some(upload) = xml_value(&String::from_utf8_lossy(&created.body), "UploadId") else {
        return Response::Failed("create: no UploadId".into());
    };
    let upload = encode_query(&upload);
    // The parts' answers do not matter: the upload is aborted either way.
    let parts = split_parts(&make_body(key, wid, len), wid);
    futures::future::join_all(parts.into_iter().enumerate().map(|(i, part)| {
        let query = format!("{path}?partNumber={}&uploadId={upload}", i + 1);
        async move {
            let _ = s3.send("PUT", &query, part, &[]).await;
        }
    }))
    .await;
    match s3
        .send(
            "DELETE",
            &format!("{path}?uploadId={upload}"),
            Bytes::new(),
            &[],
        )
        .await
    {
        Ok(r) if r.status.is_success() => Response::Deleted,
        Ok(r) if r.status.as_u16() >= 500 => Response::Unknown(format!(
            "abort: {} {}",
            r.status.as_u16(),
            r.error_code().unwrap_or_default()
        )),
        Ok(r) => Response::Failed(format!(
            "abort: {} {}",
            r.status.as_u16(),
            r.error_code().unwrap_or_default()
        )),
        Err(e) => Response::Unknown(format!("abort: {e}")),
    }
}

/// The text between the first `<tag>` and `</tag>`.
fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].to_owned())
}

/// Percent-encodes a query value.
fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn classify(req: &Request, r: &S3Reply) -> Response {
    let status = r.status.as_u16();
    let code = || {
        format!(
            "{status} {}",
            r.error_code().unwrap_or_else(|| "(no code)".into())
        )
    };
    if status >= 500 {
        return Response::Unknown(code());
    }
    match (req, status) {
        (Request::Put { .. } | Request::PutIfAbsent { .. }, 200) => Response::Written {
            etag: header_etag(r).unwrap_or_default(),
        },
        (Request::PutIfAbsent { .. }, 412) => Response::PreconditionFailed,
        (Request::Delete { .. }, 200 | 204) => Response::Deleted,
        (Request::Get { .. }, 200) => Response::Body(r.body.clone()),
        (Request::Head { .. }, 200) => Response::Etag(header_etag(r).unwrap_or_default()),
        (Request::Get { .. } | Request::Head { .. }, 404) => Response::NotFound,
        (Request::List, 200) => Response::Listing(parse_listing(&r.body)),
        _ => Response::Failed(code()),
    }
}

fn header_etag(r: &S3Reply) -> Option<String> {
    let v = r.headers.get("etag")?.to_str().ok()?;
    Some(v.trim_matches('"').to_owned())
}

/// (key, ETag) of each `<Contents>` of a ListObjectsV2 answer.
pub fn parse_listing(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for part in text.split("<Contents>").skip(1) {
        let part = part.split("</Contents>").next().unwrap_or_default();
        let field = |name: &str| -> String {
            let open = format!("<{name}>");
            let close = format!("</{name}>");
            part.find(&open)
                .and_then(|s| {
                    let rest = &part[s + open.len()..];
                    rest.find(&close).map(|e| rest[..e].to_owned())
                })
                .unwrap_or_default()
        };
        let etag = field("ETag")
            .replace("&quot;", "")
            .replace("&#34;", "")
            .trim_matches('"')
            .to_owned();
        out.push((field("Key"), etag));
    }
    out
}

/// After quiescence: reads every key and lists the bucket, each retried until it gets a
/// definite answer or `bound` passes. The reads are recorded (client `FINAL_CLIENT`).
pub async fn final_reads(
    s3: &[S3Client],
    keys: usize,
    timeline: &Timeline,
    recorder: &Recorder,
    bound: Duration,
) {
    let mut reqs: Vec<Request> = (0..keys)
        .map(|i| Request::Get { key: key_name(i) })
        .collect();
    reqs.push(Request::List);
    for (n, req) in reqs.into_iter().enumerate() {
        let clock = s3[0].env.clock().clone();
        let started = clock.now();
        let mut attempt = 0usize;
        loop {
            let s = &s3[(n + attempt) % s3.len()];
            let left = bound.saturating_sub(clock.now().duration_since(started));
            let resp = perform(
                s,
                FINAL_CLIENT,
                timeline,
                recorder,
                req.clone(),
                Phase::Final,
                left.max(Duration::from_millis(100)),
            )
            .await;
            attempt += 1;
            if resp.is_definite() || clock.now().duration_since(started) >= bound {
                break;
            }
            clock.sleep(Duration::from_millis(200)).await;
        }
    }
}
