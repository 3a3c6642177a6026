//! aws-chunked uploads (`Content-Encoding: aws-chunked`), the streaming modes of SigV4:
//!
//! - What aws-sdk-s3 (as `tests::cluster::s3_client` configures it: plain HTTP) sends as
//!   `x-amz-content-sha256` for PutObject and UploadPart, in memory and streamed from a
//!   file, with the default checksum and with CRC32C — recorded by an interceptor and
//!   asserted, so a change of SDK behaviour is noticed — and a round trip in each mode.
//!   In memory: the body's SHA-256 and an `x-amz-checksum-*` header. Streamed:
//!   `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` (signed chunks, signed trailing
//!   checksum); the SDK sends `STREAMING-UNSIGNED-PAYLOAD-TRAILER` only over https.
//! - Hand-built requests over a raw `TcpStream`, signed here (SigV4 with `hmac` + `sha2`,
//!   after the AWS "Transferring Payload in Multiple Chunks (Chunked Upload)" and
//!   "Signature calculations for trailing headers" pages; the signer is checked against
//!   the published example first): `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` with every chunk
//!   signature verified (a forged signature or a changed data byte in any chunk is
//!   `403 SignatureDoesNotMatch`), `STREAMING-UNSIGNED-PAYLOAD-TRAILER` and
//!   `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` with a trailing CRC32C (a wrong value is
//!   `400 BadDigest`, a forged trailer signature `403`, an announced trailer that does not
//!   arrive `400 MalformedTrailerError`), and bodies cut off mid-stream (`400
//!   IncompleteBody`). No refused or cut-off upload leaves an object behind, and no object
//!   keeps `aws-chunked` as its Content-Encoding.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tests::cluster::{DevCluster, REGION};

use crate::s3::{assert_bytes, client, data, etag_of, failure, new_bucket, show};

const KIB: usize = 1024;

// ---------------------------------------------------------------------------------------
// SigV4 for chunked uploads, written from the AWS documentation.

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// `x-amz-content-sha256` of the streaming modes.
const SIGNED_CHUNKS: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const SIGNED_CHUNKS_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
const UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// One request's signing context: credentials, `x-amz-date`, scope.
struct Signer {
    access_key: String,
    secret_key: String,
    /// `20130524T000000Z`
    amz_date: String,
    region: String,
}

impl Signer {
    fn scope(&self) -> String {
        format!("{}/{}/s3/aws4_request", &self.amz_date[..8], self.region)
    }

    fn signing_key(&self) -> Vec<u8> {
        let k = hmac_sha256(
            format!("AWS4{}", self.secret_key).as_bytes(),
            &self.amz_date.as_bytes()[..8],
        );
        let k = hmac_sha256(&k, self.region.as_bytes());
        let k = hmac_sha256(&k, b"s3");
        hmac_sha256(&k, b"aws4_request")
    }

    fn sign(&self, string_to_sign: &str) -> String {
        hex::encode(hmac_sha256(&self.signing_key(), string_to_sign.as_bytes()))
    }

    /// The seed signature: the canonical request of `method path` with `headers`
    /// (lower-case names, any order; all of them signed) and the literal payload mode.
    /// Returns (SignedHeaders, signature).
    fn seed(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        payload: &str,
    ) -> (String, String) {
        let mut hs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.trim())).collect();
        hs.sort_unstable();
        let canonical_headers: String = hs.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let signed: Vec<&str> = hs.iter().map(|(n, _)| *n).collect();
        let signed = signed.join(";");
        let canonical_request =
            format!("{method}\n{path}\n\n{canonical_headers}\n{signed}\n{payload}");
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{}\n{}",
            self.amz_date,
            self.scope(),
            sha256_hex(canonical_request.as_bytes())
        );
        (signed, self.sign(&string_to_sign))
    }

    /// The signature of one chunk, chained to the previous one.
    fn chunk(&self, prev: &str, data: &[u8]) -> String {
        self.sign(&format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{EMPTY_SHA256}\n{}",
            self.amz_date,
            self.scope(),
            sha256_hex(data)
        ))
    }

    /// The signature of the trailing headers (`canonical`: `name:value\n` each).
    fn trailer(&self, prev: &str, canonical: &str) -> String {
        self.sign(&format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{prev}\n{}",
            self.amz_date,
            self.scope(),
            sha256_hex(canonical.as_bytes())
        ))
    }

    fn authorization(&self, signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key,
            self.scope()
        )
    }
}

/// `20261122T073819Z` for `secs` since the Unix epoch (civil from days, H. Hinnant).
fn amz_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn signer_for(c: &DevCluster) -> Signer {
    let now = common::env::Clock::new()
        .wall()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    Signer {
        access_key: c.access_key.clone(),
        secret_key: c.secret_key.clone(),
        amz_date: amz_date(i64::try_from(now).expect("seconds fit i64")),
        region: REGION.to_string(),
    }
}

/// base64 of the big-endian CRC32C, as `x-amz-checksum-crc32c` carries it.
#[allow(clippy::big_endian_bytes)]
fn crc32c_b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(crc32c::crc32c(b).to_be_bytes())
}

/// The signer reproduces the example of the AWS chunked-upload page: seed signature and
/// the three chunk signatures (64 KiB of 'a', 1 KiB of 'a', the empty final chunk).
#[test]
fn signer_matches_the_aws_chunked_upload_example() {
    let s = Signer {
        access_key: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        amz_date: "20130524T000000Z".into(),
        region: "us-east-1".into(),
    };
    let headers = [
        ("content-encoding", "aws-chunked".to_string()),
        ("content-length", "66824".to_string()),
        ("host", "s3.amazonaws.com".to_string()),
        ("x-amz-content-sha256", SIGNED_CHUNKS.to_string()),
        ("x-amz-date", "20130524T000000Z".to_string()),
        ("x-amz-decoded-content-length", "66560".to_string()),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY".to_string()),
    ];
    let (signed, seed) = s.seed(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &headers,
        SIGNED_CHUNKS,
    );
    assert_eq!(
        signed,
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
         x-amz-decoded-content-length;x-amz-storage-class"
    );
    assert_eq!(
        seed,
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    );
    let c1 = s.chunk(&seed, &[b'a'; 64 * KIB]);
    assert_eq!(
        c1,
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    );
    let c2 = s.chunk(&c1, &[b'a'; KIB]);
    assert_eq!(
        c2,
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    );
    let c3 = s.chunk(&c2, b"");
    assert_eq!(
        c3,
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
    );
    // And the encoded body of that example is 66824 bytes long.
    let body = signed_body(
        &s,
        &seed,
        &[&[b'a'; 64 * KIB], &[b'a'; KIB]],
        None,
        &Tamper::None,
    );
    assert_eq!(body.len(), 66_824);
}

// ---------------------------------------------------------------------------------------
// Hand-built requests.

/// What to break in a body (after signing).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tamper {
    None,
    /// Flip one hex digit of the signature of chunk `i` (`chunks.len()` = the final,
    /// empty chunk).
    ChunkSignature(usize),
    /// Flip one data byte of chunk `i` (signature unchanged).
    DataByte(usize),
    /// Flip one hex digit of the trailer signature.
    TrailerSignature,
    /// Announce the trailer in `x-amz-trailer` but leave it out of the body.
    DropTrailer,
    /// Send the trailer value under another name than the announced one.
    TrailerName(&'static str),
}

/// The aws-chunked body of a signed upload: every chunk `hex(size);chunk-signature=sig`,
/// then the final empty chunk; with `trailer`, the trailing `name:value` and
/// `x-amz-trailer-signature` after it.
fn signed_body(
    s: &Signer,
    seed: &str,
    chunks: &[&[u8]],
    trailer: Option<(&str, &str)>,
    tamper: &Tamper,
) -> Vec<u8> {
    let flip_hex = |sig: &str| -> String {
        let first = if sig.starts_with('0') { "1" } else { "0" };
        format!("{first}{}", &sig[1..])
    };
    let mut out = Vec::new();
    let mut prev = seed.to_string();
    for (i, chunk) in chunks.iter().copied().chain([&[][..]]).enumerate() {
        let sig = s.chunk(&prev, chunk);
        prev = sig.clone();
        let sig = if *tamper == Tamper::ChunkSignature(i) {
            flip_hex(&sig)
        } else {
            sig
        };
        out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", chunk.len()).as_bytes());
        let mut chunk = chunk.to_vec();
        if *tamper == Tamper::DataByte(i) {
            let at = chunk.len() / 2;
            chunk[at] ^= 0x01;
        }
        out.extend_from_slice(&chunk);
        if !chunk.is_empty() || trailer.is_none() {
            out.extend_from_slice(b"\r\n");
        }
    }
    if let Some((name, value)) = trailer {
        let sig = s.trailer(&prev, &format!("{name}:{value}\n"));
        let sig = if *tamper == Tamper::TrailerSignature {
            flip_hex(&sig)
        } else {
            sig
        };
        out.extend_from_slice(
            format!("{name}:{value}\r\nx-amz-trailer-signature:{sig}\r\n\r\n").as_bytes(),
        );
    }
    out
}

/// The aws-chunked body of an unsigned upload: `hex(size)` chunks, the final `0` chunk,
/// then the trailing `name:value` (if any).
fn unsigned_body(chunks: &[&[u8]], trailer: Option<(&str, &str)>) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    if let Some((name, value)) = trailer {
        out.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A whole PUT request: head (signed) and body.
struct RawPut {
    host: String,
    bytes: Vec<u8>,
    /// Where the body starts in `bytes`.
    body_at: usize,
}

/// Builds a PUT of `chunks` to `/bucket/key` in streaming `mode` (one of the three
/// constants), with an optional trailing checksum (`trailer`: header name and value,
/// announced in `x-amz-trailer`).
fn chunked_put(
    c: &DevCluster,
    bucket: &str,
    key: &str,
    mode: &str,
    chunks: &[&[u8]],
    trailer: Option<(&str, &str)>,
    tamper: &Tamper,
) -> RawPut {
    let s = signer_for(c);
    let host = c
        .endpoint
        .strip_prefix("http://")
        .expect("http endpoint")
        .to_string();
    let path = format!("/{bucket}/{key}");
    let decoded: usize = chunks.iter().map(|c| c.len()).sum();
    // The body's length depends on the signatures only through their (fixed) length, so
    // it is known before the seed signature: sign with placeholders, measure.
    let placeholder = Signer {
        access_key: String::new(),
        secret_key: String::new(),
        amz_date: s.amz_date.clone(),
        region: s.region.clone(),
    };
    let sent_trailer = match tamper {
        Tamper::DropTrailer => None,
        Tamper::TrailerName(other) => trailer.map(|(_, v)| (*other, v)),
        _ => trailer,
    };
    let encoded_len = match mode {
        UNSIGNED_TRAILER => unsigned_body(chunks, sent_trailer).len(),
        _ => signed_body(&placeholder, EMPTY_SHA256, chunks, sent_trailer, tamper).len(),
    };
    let mut headers = vec![
        ("content-encoding", "aws-chunked".to_string()),
        ("content-length", encoded_len.to_string()),
        ("host", host.clone()),
        ("x-amz-content-sha256", mode.to_string()),
        ("x-amz-date", s.amz_date.clone()),
        ("x-amz-decoded-content-length", decoded.to_string()),
    ];
    if let Some((name, _)) = trailer {
        headers.push(("x-amz-trailer", name.to_string()));
    }
    let (signed_headers, seed) = s.seed("PUT", &path, &headers, mode);
    let body = match mode {
        UNSIGNED_TRAILER => unsigned_body(chunks, sent_trailer),
        _ => signed_body(&s, &seed, chunks, sent_trailer, tamper),
    };
    assert_eq!(body.len(), encoded_len, "encoded length");
    let mut head = format!("PUT {path} HTTP/1.1\r\n");
    for (n, v) in &headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "authorization: {}\r\nconnection: close\r\n\r\n",
        s.authorization(&signed_headers, &seed)
    ));
    let mut bytes = head.into_bytes();
    let body_at = bytes.len();
    bytes.extend_from_slice(&body);
    RawPut {
        host,
        bytes,
        body_at,
    }
}

/// A PUT of `body` in one piece, the payload either signed (its SHA-256 in
/// `x-amz-content-sha256`, as the SDK sends in-memory bodies) or `UNSIGNED-PAYLOAD`.
fn single_put(c: &DevCluster, bucket: &str, key: &str, body: &[u8], signed: bool) -> RawPut {
    let s = signer_for(c);
    let host = c
        .endpoint
        .strip_prefix("http://")
        .expect("http endpoint")
        .to_string();
    let path = format!("/{bucket}/{key}");
    let payload = if signed {
        sha256_hex(body)
    } else {
        "UNSIGNED-PAYLOAD".to_string()
    };
    let headers = [
        ("content-length", body.len().to_string()),
        ("host", host.clone()),
        ("x-amz-content-sha256", payload.clone()),
        ("x-amz-date", s.amz_date.clone()),
    ];
    let (signed_headers, signature) = s.seed("PUT", &path, &headers, &payload);
    let mut head = format!("PUT {path} HTTP/1.1\r\n");
    for (n, v) in &headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "authorization: {}\r\nconnection: close\r\n\r\n",
        s.authorization(&signed_headers, &signature)
    ));
    let mut bytes = head.into_bytes();
    let body_at = bytes.len();
    bytes.extend_from_slice(body);
    RawPut {
        host,
        bytes,
        body_at,
    }
}

/// A raw response: status (None if the connection closed without one) and the text.
#[derive(Debug)]
struct RawResponse {
    status: Option<u16>,
    text: String,
}

impl RawResponse {
    fn code(&self) -> Option<String> {
        let start = self.text.find("<Code>")? + "<Code>".len();
        let end = self.text[start..].find("</Code>")? + start;
        Some(self.text[start..end].to_string())
    }
}

/// Sends the first `send` bytes of `req` (all of it if None); after a cut, half-closes
/// the connection as a client that died mid-upload would. Reads whatever response comes
/// until the server closes (the request carries `Connection: close`). A refused request
/// may be answered before its body is read: write errors are tolerated.
fn exchange(req: &RawPut, send: Option<usize>) -> RawResponse {
    let mut s = TcpStream::connect(&req.host).expect("connect to the gateway");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let n = send.unwrap_or(req.bytes.len());
    let _ = s.write_all(&req.bytes[..n]);
    if send.is_some() {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut resp = Vec::new();
    let mut buf = [0u8; 16 * KIB];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => resp.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the response: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok());
    RawResponse { status, text }
}

/// Asserts the response is `status` with S3 error `code`.
#[track_caller]
fn assert_refused(r: &RawResponse, status: u16, code: &str, what: &str) {
    assert_eq!(
        (r.status, r.code().as_deref()),
        (Some(status), Some(code)),
        "{what}: expected {status} {code}; got:\n{}",
        r.text
    );
}

/// Asserts `bucket/key` does not exist (HEAD 404, and absent from the listing).
async fn assert_absent(s3: &Client, bucket: &str, key: &str, what: &str) {
    let (st, _) = failure(s3.head_object().bucket(bucket).key(key).send().await);
    assert_eq!(st, 404, "{what}: {bucket}/{key} exists");
    let list = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("list {bucket}: {}", show(&e)));
    assert_eq!(list.key_count(), Some(0), "{what}: listed: {list:?}");
}

async fn get_all(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {}", show(&e)));
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// 64 KiB, 64 KiB and a 12,345-byte remainder.
fn three_chunks(seed: u64) -> (Vec<u8>, [std::ops::Range<usize>; 3]) {
    let body = data(2 * 64 * KIB + 12_345, seed);
    (
        body,
        [
            0..64 * KIB,
            64 * KIB..128 * KIB,
            128 * KIB..128 * KIB + 12_345,
        ],
    )
}

#[tokio::test]
async fn signed_chunks_round_trip() {
    let (c, s3) = client().await;
    let b = new_bucket(&s3, "chunk-ok").await;
    let (body, r) = three_chunks(1);
    let chunks: Vec<&[u8]> = r.iter().map(|r| &body[r.clone()]).collect();
    let req = chunked_put(
        c,
        &b,
        "signed.bin",
        SIGNED_CHUNKS,
        &chunks,
        None,
        &Tamper::None,
    );
    let resp = exchange(&req, None);
    assert_eq!(
        resp.status,
        Some(200),
        "signed aws-chunked PUT:\n{}",
        resp.text
    );
    let etag = etag_of(&body);
    assert!(
        resp.text
            .to_ascii_lowercase()
            .contains(&format!("etag: {etag}")),
        "ETag {etag} (MD5 of the decoded bytes) in:\n{}",
        resp.text
    );
    assert_bytes(
        &get_all(&s3, &b, "signed.bin").await,
        &body,
        "GET of the chunked PUT",
    );
    let head = s3
        .head_object()
        .bucket(&b)
        .key("signed.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.content_length(),
        Some(body.len() as i64),
        "decoded length"
    );
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    // `aws-chunked` is the transfer coding of the upload, not of the object.
    assert_eq!(head.content_encoding(), None, "stored Content-Encoding");

    // One chunk only, and an empty body (just the final chunk), are fine too.
    let one = data(1000, 2);
    let req = chunked_put(
        c,
        &b,
        "one.bin",
        SIGNED_CHUNKS,
        &[&one],
        None,
        &Tamper::None,
    );
    let resp = exchange(&req, None);
    assert_eq!(resp.status, Some(200), "one chunk:\n{}", resp.text);
    assert_bytes(&get_all(&s3, &b, "one.bin").await, &one, "one chunk");
    let req = chunked_put(c, &b, "empty.bin", SIGNED_CHUNKS, &[], None, &Tamper::None);
    let resp = exchange(&req, None);
    assert_eq!(resp.status, Some(200), "empty body:\n{}", resp.text);
    assert_bytes(&get_all(&s3, &b, "empty.bin").await, b"", "empty body");
}

#[tokio::test]
async fn forged_chunk_signature_or_changed_byte_is_refused_and_stores_nothing() {
    let (c, s3) = client().await;
    let b = new_bucket(&s3, "chunk-bad").await;
    let (body, r) = three_chunks(3);
    let chunks: Vec<&[u8]> = r.iter().map(|r| &body[r.clone()]).collect();
    // Every chunk's signature, the final empty chunk's included; a data byte of each
    // data chunk.
    let cases = (0..=chunks.len())
        .map(Tamper::ChunkSignature)
        .chain((0..chunks.len()).map(Tamper::DataByte));
    for (i, tamper) in cases.enumerate() {
        let key = format!("bad-{i}");
        let req = chunked_put(c, &b, &key, SIGNED_CHUNKS, &chunks, None, &tamper);
        let resp = exchange(&req, None);
        assert_refused(&resp, 403, "SignatureDoesNotMatch", &format!("{tamper:?}"));
        assert_absent(&s3, &b, &key, &format!("{tamper:?}")).await;
    }
    // Over an existing object: the old bytes stay.
    let old = data(3000, 4);
    crate::s3::put(&s3, &b, "keep", &old).await;
    let req = chunked_put(
        c,
        &b,
        "keep",
        SIGNED_CHUNKS,
        &chunks,
        None,
        &Tamper::DataByte(2),
    );
    assert_refused(
        &exchange(&req, None),
        403,
        "SignatureDoesNotMatch",
        "overwrite",
    );
    assert_bytes(
        &get_all(&s3, &b, "keep").await,
        &old,
        "object after a refused overwrite",
    );
}

#[tokio::test]
async fn unsigned_payload_trailer_checksum_verified() {
    let (c, s3) = client().await;
    let b = new_bucket(&s3, "trailer").await;
    let (body, r) = three_chunks(5);
    let chunks: Vec<&[u8]> = r.iter().map(|r| &body[r.clone()]).collect();
    let crc = crc32c_b64(&body);
    let name = "x-amz-checksum-crc32c";

    // A correct trailer: stored, and returned with checksum mode.
    let req = chunked_put(
        c,
        &b,
        "ok",
        UNSIGNED_TRAILER,
        &chunks,
        Some((name, &crc)),
        &Tamper::None,
    );
    let resp = exchange(&req, None);
    assert_eq!(
        resp.status,
        Some(200),
        "unsigned trailer PUT:\n{}",
        resp.text
    );
    assert!(
        resp.text.contains(&format!("{name}: {crc}")),
        "PutObject echoes the checksum {crc}:\n{}",
        resp.text
    );
    let head = s3
        .head_object()
        .bucket(&b)
        .key("ok")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc32_c(), Some(crc.as_str()), "HEAD checksum");
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.content_encoding(), None, "stored Content-Encoding");
    let out = s3
        .get_object()
        .bucket(&b)
        .key("ok")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(out.checksum_crc32_c(), Some(crc.as_str()), "GET checksum");
    let got = out.body.collect().await.unwrap().into_bytes();
    assert_bytes(&got, &body, "GET of the unsigned-trailer PUT");

    // A wrong trailer value: BadDigest (S3's code for a mismatching x-amz-checksum-*),
    // nothing stored.
    let wrong = crc32c_b64(b"something else");
    let req = chunked_put(
        c,
        &b,
        "wrong",
        UNSIGNED_TRAILER,
        &chunks,
        Some((name, &wrong)),
        &Tamper::None,
    );
    assert_refused(
        &exchange(&req, None),
        400,
        "BadDigest",
        "wrong trailing CRC32C",
    );
    assert_absent(&s3, &b, "wrong", "wrong trailing CRC32C").await;

    // Right value, but a data byte changed on the way (unsigned chunks: only the
    // trailer can notice).
    let mut changed = body.clone();
    changed[70_000] ^= 0x80;
    let changed_chunks: Vec<&[u8]> = r.iter().map(|r| &changed[r.clone()]).collect();
    let req = chunked_put(
        c,
        &b,
        "changed",
        UNSIGNED_TRAILER,
        &changed_chunks,
        Some((name, &crc)),
        &Tamper::None,
    );
    assert_refused(
        &exchange(&req, None),
        400,
        "BadDigest",
        "changed byte, unsigned chunks",
    );
    assert_absent(&s3, &b, "changed", "changed byte, unsigned chunks").await;
}

/// A trailing checksum announced in `x-amz-trailer` must arrive: without it an unsigned
/// upload would go unverified. S3 answers `400 MalformedTrailerError` when the trailer
/// is missing or does not match the announced one; nothing is stored.
#[tokio::test]
async fn announced_trailer_must_arrive() {
    let (c, s3) = client().await;
    let b = new_bucket(&s3, "notrailer").await;
    let (body, r) = three_chunks(8);
    let chunks: Vec<&[u8]> = r.iter().map(|r| &body[r.clone()]).collect();
    let crc = crc32c_b64(&body);
    let trailer = Some(("x-amz-checksum-crc32c", crc.as_str()));
    for (m, mode) in [UNSIGNED_TRAILER, SIGNED_CHUNKS_TRAILER]
        .into_iter()
        .enumerate()
    {
        for (t, tamper) in [
            Tamper::DropTrailer,
            Tamper::TrailerName("x-amz-checksum-crc32"),
        ]
        .into_iter()
        .enumerate()
        {
            let key = format!("t-{m}-{t}");
            let what = format!("{mode}, {tamper:?}");
            let req = chunked_put(c, &b, &key, mode, &chunks, trailer, &tamper);
            assert_refused(&exchange(&req, None), 400, "MalformedTrailerError", &what);
            assert_absent(&s3, &b, &key, &what).await;
        }
    }
}

#[tokio::test]
async fn signed_payload_trailer_checksum_and_signature_verified() {
    let (c, s3) = client().await;
    let b = new_bucket(&s3, "strailer").await;
    let (body, r) = three_chunks(6);
    let chunks: Vec<&[u8]> = r.iter().map(|r| &body[r.clone()]).collect();
    let crc = crc32c_b64(&body);
    let name = "x-amz-checksum-crc32c";
    let put = |key: &str, value: &str, tamper: Tamper| {
        chunked_put(
            c,
            &b,
            key,
            SIGNED_CHUNKS_TRAILER,
            &chunks,
            Some((name, value)),
            &tamper,
        )
    };

    let resp = exchange(&put("ok", &crc, Tamper::None), None);
    assert_eq!(resp.status, Some(200), "signed trailer PUT:\n{}", resp.text);
    let out = s3
        .get_object()
        .bucket(&b)
        .key("ok")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(out.checksum_crc32_c(), Some(crc.as_str()), "GET checksum");
    let got = out.body.collect().await.unwrap().into_bytes();
    assert_bytes(&got, &body, "GET of the signed-trailer PUT");

    let wrong = crc32c_b64(b"not the body");
    assert_refused(
        &exchange(&put("wrong", &wrong, Tamper::None), None),
        400,
        "BadDigest",
        "wrong (validly signed) trailing CRC32C",
    );
    assert_absent(&s3, &b, "wrong", "wrong trailing CRC32C").await;
    assert_refused(
        &exchange(&put("forged", &crc, Tamper::TrailerSignature), None),
        403,
        "SignatureDoesNotMatch",
        "forged trailer signature",
    );
    assert_absent(&s3, &b, "forged", "forged trailer signature").await;
    assert_refused(
        &exchange(&put("forged-chunk", &crc, Tamper::ChunkSignature(1)), None),
        403,
        "SignatureDoesNotMatch",
        "forged chunk signature, trailer mode",
    );
    assert_absent(
        &s3,
        &b,
        "forged-chunk",
        "forged chunk signature, trailer mode",
    )
    .await;
}

/// A client that dies mid-upload (the body cut off, the connection half-closed): `400
/// IncompleteBody` — the client's error, not the server's — and no object. For every
/// streaming mode, and for the single-piece payloads for comparison.
#[tokio::test]
async fn truncated_bodies_are_incomplete_and_store_nothing() {
    let (c, s3) = client().await;
    let b = new_bucket(&s3, "trunc").await;
    let (body, r) = three_chunks(7);
    let chunks: Vec<&[u8]> = r.iter().map(|r| &body[r.clone()]).collect();
    let crc = crc32c_b64(&body);
    let trailer = Some(("x-amz-checksum-crc32c", crc.as_str()));
    let modes = [
        (SIGNED_CHUNKS, None),
        (UNSIGNED_TRAILER, trailer),
        (SIGNED_CHUNKS_TRAILER, trailer),
        ("single signed payload", None),
        ("UNSIGNED-PAYLOAD", None),
    ];
    for (m, (mode, trailer)) in modes.into_iter().enumerate() {
        let build = |key: &str| match mode {
            "single signed payload" => single_put(c, &b, key, &body, true),
            "UNSIGNED-PAYLOAD" => single_put(c, &b, key, &body, false),
            _ => chunked_put(c, &b, key, mode, &chunks, trailer, &Tamper::None),
        };
        let probe = build("probe");
        let encoded = &probe.bytes[probe.body_at..];
        // Where the body is cut (offsets in the body): 3 bytes in (inside the first
        // chunk's header), in the middle of the second chunk's data, right before the
        // final (empty) chunk, and one byte short of the end.
        let mut cuts = vec![3, 64 * KIB + 30_000, encoded.len() - 1];
        if mode.starts_with("STREAMING") {
            let final_chunk = encoded
                .windows(4)
                .rposition(|w| w == b"\r\n0\r" || w == b"\r\n0;")
                .expect("the final chunk")
                + 2;
            cuts.push(final_chunk);
        }
        for (i, cut) in cuts.into_iter().enumerate() {
            let key = format!("cut-{m}-{i}");
            let req = build(&key);
            let what = format!("{mode} cut at {cut} of {}", req.bytes.len() - req.body_at);
            let resp = exchange(&req, Some(req.body_at + cut));
            assert_refused(&resp, 400, "IncompleteBody", &what);
            assert_absent(&s3, &b, &key, &what).await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// What aws-sdk-s3 sends.

/// The payload-related headers of every request an SDK operation transmitted.
#[derive(Clone, Debug, Default)]
struct Recorder(Arc<Mutex<Vec<Sent>>>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Sent {
    content_sha256: Option<String>,
    content_encoding: Option<String>,
    decoded_length: Option<String>,
    trailer: Option<String>,
    /// Names of `x-amz-checksum-*` headers (values are checked through the responses).
    checksum_headers: Vec<String>,
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "s3_chunked::Recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let h = context.request().headers();
        let get = |n: &str| h.get(n).map(str::to_string);
        let mut checksum_headers: Vec<String> = h
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .filter(|n| n.starts_with("x-amz-checksum-"))
            .collect();
        checksum_headers.sort_unstable();
        self.0.lock().unwrap().push(Sent {
            content_sha256: get("x-amz-content-sha256"),
            content_encoding: get("content-encoding"),
            decoded_length: get("x-amz-decoded-content-length"),
            trailer: get("x-amz-trailer"),
            checksum_headers,
        });
        Ok(())
    }
}

impl Recorder {
    /// What the single transmission (retries would repeat it identically) sent.
    fn only(&self) -> Sent {
        let all = self.0.lock().unwrap().clone();
        assert!(!all.is_empty(), "nothing transmitted");
        assert!(all.iter().all(|s| *s == all[0]), "attempts differ: {all:?}");
        all[0].clone()
    }
}

/// How the body is handed to the SDK.
#[derive(Clone, Copy, Debug)]
enum Body {
    /// `ByteStream::from(Vec<u8>)`: the SDK sees the bytes.
    InMemory,
    /// `ByteStream::from_path`: a stream of known length.
    File,
}

/// The payload mode the SDK is expected to use (asserted).
fn expected_mode(body: Body, algo: Option<&ChecksumAlgorithm>, bytes: &[u8]) -> Sent {
    let alg = match algo {
        Some(ChecksumAlgorithm::Crc32C) => "crc32c",
        None => "crc32", // the SDK's default (request_checksum_calculation WhenSupported)
        Some(other) => panic!("not a case here: {other:?}"),
    };
    match body {
        // In memory: an ordinary signed payload (the SHA-256 of the body), the checksum
        // in a header.
        Body::InMemory => Sent {
            content_sha256: Some(sha256_hex(bytes)),
            content_encoding: None,
            decoded_length: None,
            trailer: None,
            checksum_headers: vec![format!("x-amz-checksum-{alg}")],
        },
        // Streamed over plain HTTP: signed aws-chunked with a signed trailing checksum.
        // (Over HTTPS the SDK would send STREAMING-UNSIGNED-PAYLOAD-TRAILER instead: it
        // signs chunks only when the URI is http:, aws-sdk-s3 aws_chunked.rs.)
        Body::File => Sent {
            content_sha256: Some(SIGNED_CHUNKS_TRAILER.to_string()),
            content_encoding: Some("aws-chunked".to_string()),
            decoded_length: Some(bytes.len().to_string()),
            trailer: Some(format!("x-amz-checksum-{alg}")),
            checksum_headers: vec![],
        },
    }
}

async fn byte_stream(body: Body, bytes: &[u8], dir: &std::path::Path, name: &str) -> ByteStream {
    match body {
        Body::InMemory => ByteStream::from(bytes.to_vec()),
        Body::File => {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            ByteStream::from_path(&p).await.unwrap()
        }
    }
}

/// The checksum a GET/HEAD with checksum mode must return for `algo`.
fn returned<'a>(
    algo: Option<&ChecksumAlgorithm>,
    crc32: Option<&'a str>,
    crc32c: Option<&'a str>,
) -> Option<&'a str> {
    match algo {
        Some(ChecksumAlgorithm::Crc32C) => crc32c,
        _ => crc32,
    }
}

const SDK_CASES: [(Body, Option<ChecksumAlgorithm>); 4] = [
    (Body::InMemory, None),
    (Body::InMemory, Some(ChecksumAlgorithm::Crc32C)),
    (Body::File, None),
    (Body::File, Some(ChecksumAlgorithm::Crc32C)),
];

#[tokio::test]
async fn sdk_put_object_payload_modes_and_round_trips() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "sdk-put").await;
    let dir = tests::TempDir::new("s3-chunked");
    for (i, (body, algo)) in SDK_CASES.into_iter().enumerate() {
        let bytes = data(200 * KIB + 77, 20 + i as u64);
        let key = format!("put-{i}");
        let rec = Recorder::default();
        let mut put = s3
            .put_object()
            .bucket(&b)
            .key(&key)
            .body(byte_stream(body, &bytes, dir.path(), &key).await);
        if let Some(a) = &algo {
            put = put.checksum_algorithm(a.clone());
        }
        let out = put
            .customize()
            .interceptor(rec.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {body:?} {algo:?}: {}", show(&e)));
        let what = format!("PutObject, {body:?} body, checksum {algo:?}");
        assert_eq!(
            rec.only(),
            expected_mode(body, algo.as_ref(), &bytes),
            "{what}"
        );
        assert_eq!(out.e_tag(), Some(etag_of(&bytes).as_str()), "{what}: ETag");
        let echoed = returned(algo.as_ref(), out.checksum_crc32(), out.checksum_crc32_c())
            .unwrap_or_else(|| panic!("{what}: checksum not echoed: {out:?}"))
            .to_string();
        if algo.is_some() {
            assert_eq!(echoed, crc32c_b64(&bytes), "{what}: CRC32C");
        }
        // The object: exact bytes, the checksum back with checksum mode (the SDK also
        // validates the body against it), no aws-chunked Content-Encoding.
        let got = s3
            .get_object()
            .bucket(&b)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: GET: {}", show(&e)));
        assert_eq!(
            returned(algo.as_ref(), got.checksum_crc32(), got.checksum_crc32_c()),
            Some(echoed.as_str()),
            "{what}: GET checksum"
        );
        assert_eq!(got.content_encoding(), None, "{what}: GET Content-Encoding");
        let got = got.body.collect().await.unwrap().into_bytes();
        assert_bytes(&got, &bytes, &what);
    }
}

#[tokio::test]
async fn sdk_upload_part_payload_modes_and_round_trips() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "sdk-part").await;
    let dir = tests::TempDir::new("s3-chunked-part");
    for (i, (body, algo)) in SDK_CASES.into_iter().enumerate() {
        let bytes = data(150 * KIB + 5, 30 + i as u64);
        let key = format!("mpu-{i}");
        let mut create = s3.create_multipart_upload().bucket(&b).key(&key);
        if let Some(a) = &algo {
            create = create.checksum_algorithm(a.clone());
        }
        let upload_id = create
            .send()
            .await
            .unwrap_or_else(|e| panic!("create {key}: {}", show(&e)))
            .upload_id()
            .unwrap()
            .to_string();
        let rec = Recorder::default();
        let mut part = s3
            .upload_part()
            .bucket(&b)
            .key(&key)
            .upload_id(&upload_id)
            .part_number(1)
            .body(byte_stream(body, &bytes, dir.path(), &key).await);
        if let Some(a) = &algo {
            part = part.checksum_algorithm(a.clone());
        }
        let out = part
            .customize()
            .interceptor(rec.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPart {body:?} {algo:?}: {}", show(&e)));
        let what = format!("UploadPart, {body:?} body, checksum {algo:?}");
        assert_eq!(
            rec.only(),
            expected_mode(body, algo.as_ref(), &bytes),
            "{what}"
        );
        assert_eq!(out.e_tag(), Some(etag_of(&bytes).as_str()), "{what}: ETag");
        let echoed = returned(algo.as_ref(), out.checksum_crc32(), out.checksum_crc32_c())
            .unwrap_or_else(|| panic!("{what}: checksum not echoed: {out:?}"))
            .to_string();
        if algo.is_some() {
            assert_eq!(echoed, crc32c_b64(&bytes), "{what}: CRC32C");
        }
        let mut completed = CompletedPart::builder()
            .part_number(1)
            .e_tag(out.e_tag().unwrap());
        if algo.is_some() {
            completed = completed.checksum_crc32_c(&echoed);
        }
        s3.complete_multipart_upload()
            .bucket(&b)
            .key(&key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(completed.build())
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: complete: {}", show(&e)));
        assert_bytes(&get_all(&s3, &b, &key).await, &bytes, &what);
    }
}
