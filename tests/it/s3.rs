//! The S3 gateway driven by real S3 clients (aws-sdk-s3; the aws CLI and boto3 through
//! `scripts/s3-smoke.sh`) against a real `shale dev` process: buckets, auth and presigned
//! URLs here; objects in `s3_object`, listings and versioning in `s3_list`, multipart in
//! `s3_multipart`, kill -9 and restart in `s3_resilience`.
//!
//! Most tests share one `shale dev` cluster (started by the first test that needs it,
//! killed and its folder removed by its watchdog when the test binary exits); each test
//! works in its own buckets.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use tests::cluster::DevCluster;

static SHARED: tokio::sync::OnceCell<DevCluster> = tokio::sync::OnceCell::const_new();

/// The cluster shared by the tests of this binary.
pub async fn shared() -> &'static DevCluster {
    SHARED
        .get_or_try_init(DevCluster::start_shared)
        .await
        .expect("starting the shared shale dev cluster")
}

/// The shared cluster and a client with its (user "dev") credentials.
pub async fn client() -> (&'static DevCluster, Client) {
    let c = shared().await;
    (c, c.s3())
}

/// A bucket name no other test uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "it-{tag}-{}-{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh bucket owned by the dev user.
pub async fn new_bucket(s3: &Client, tag: &str) -> String {
    let b = unique(tag);
    s3.create_bucket()
        .bucket(&b)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {b}: {}", show(&e)));
    b
}

/// Deterministic pseudo-random bytes (xorshift64*), different per `seed`.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

pub fn md5_b64(b: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b))
}

/// `"<md5 hex>"`, the ETag of a single-PUT object.
pub fn etag_of(b: &[u8]) -> String {
    format!("\"{}\"", md5_hex(b))
}

/// A readable rendering of an SDK error: status, code, message.
pub fn show<E: ProvideErrorMetadata + std::fmt::Debug>(e: &SdkError<E>) -> String {
    format!(
        "status {:?} code {:?} message {:?} ({e:?})",
        status_of(e),
        e.code(),
        e.message()
    )
}

pub fn status_of<E>(e: &SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// The (HTTP status, S3 error code) of a request that must fail.
#[track_caller]
pub fn failure<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, SdkError<E>>,
) -> (u16, String) {
    match r {
        Ok(v) => panic!("expected an S3 error, got success: {v:?}"),
        Err(e) => (
            status_of(&e).unwrap_or_else(|| panic!("no HTTP response: {e:?}")),
            e.code().unwrap_or("").to_string(),
        ),
    }
}

/// Asserts that `r` failed with `status` and S3 error `code`.
#[track_caller]
pub fn assert_s3_error<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, SdkError<E>>,
    status: u16,
    code: &str,
    what: &str,
) {
    let (s, c) = failure(r);
    assert_eq!(
        (s, c.as_str()),
        (status, code),
        "{what}: expected {status} {code}, got {s} {c:?}"
    );
}

pub async fn put(s3: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key} ({} bytes): {}", body.len(), show(&e)));
    out.e_tag().unwrap_or_default().to_string()
}

pub async fn get(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {}", show(&e)));
    out.body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("reading {bucket}/{key}: {e}"))
        .into_bytes()
        .to_vec()
}

/// Asserts byte equality without printing megabytes.
#[track_caller]
pub fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i} of {}", want.len());
    }
}

/// A plain HTTP/1.1 request over a TcpStream (no client library): (status, body).
pub fn raw_http(method: &str, url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("http:// url");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read response");
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&resp[..head_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let mut body = resp[head_end + 4..].to_vec();
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_txt = String::from_utf8_lossy(&b[..eol]).to_string();
        let size = usize::from_str_radix(size_txt.split(';').next().unwrap().trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

// ---------------------------------------------------------------------------------------
// Buckets.

#[tokio::test]
async fn buckets_create_list_head_location_delete() {
    let (_, s3) = client().await;
    let b = unique("bkt");
    s3.create_bucket().bucket(&b).send().await.unwrap();

    // Listed, with a creation date.
    let list = s3.list_buckets().send().await.unwrap();
    let mine = list
        .buckets()
        .iter()
        .find(|x| x.name() == Some(b.as_str()))
        .unwrap_or_else(|| panic!("{b} not in list_buckets: {list:?}"));
    assert!(mine.creation_date().is_some(), "creation date");

    s3.head_bucket().bucket(&b).send().await.unwrap();
    let loc = s3.get_bucket_location().bucket(&b).send().await.unwrap();
    // us-east-1 is reported as an empty LocationConstraint.
    let c = loc.location_constraint().map(|c| c.as_str().to_string());
    assert!(
        matches!(c.as_deref(), None | Some("")),
        "location of a us-east-1 bucket: {c:?}"
    );

    // Existing, own → BucketAlreadyOwnedByYou.
    assert_s3_error(
        s3.create_bucket().bucket(&b).send().await,
        409,
        "BucketAlreadyOwnedByYou",
        "create an existing own bucket",
    );

    // Not empty → BucketNotEmpty; then empty → deleted.
    put(&s3, &b, "k", b"x").await;
    assert_s3_error(
        s3.delete_bucket().bucket(&b).send().await,
        409,
        "BucketNotEmpty",
        "delete a non-empty bucket",
    );
    s3.delete_object().bucket(&b).key("k").send().await.unwrap();
    s3.delete_bucket().bucket(&b).send().await.unwrap();

    // Gone: head 404, delete NoSuchBucket, not listed.
    let (st, _) = failure(s3.head_bucket().bucket(&b).send().await);
    assert_eq!(st, 404, "head of a deleted bucket");
    assert_s3_error(
        s3.delete_bucket().bucket(&b).send().await,
        404,
        "NoSuchBucket",
        "delete a missing bucket",
    );
    let list = s3.list_buckets().send().await.unwrap();
    assert!(
        !list.buckets().iter().any(|x| x.name() == Some(b.as_str())),
        "deleted bucket still listed"
    );
    // The name can be created again.
    s3.create_bucket().bucket(&b).send().await.unwrap();
    s3.delete_bucket().bucket(&b).send().await.unwrap();
}

#[tokio::test]
async fn bucket_names_are_validated() {
    let (_, s3) = client().await;
    for name in [
        "ab",                 // too short
        &"a".repeat(64),      // too long
        "Upper-Case-Bucket",  // upper case
        "under_score-bucket", // underscore
        "-starts-with-dash",  // must start with a letter or digit
        "ends-with-dash-",    // must end with a letter or digit
        "two..dots",          // adjacent periods
        "192.168.5.4",        // an IP address
    ] {
        assert_s3_error(
            s3.create_bucket().bucket(name).send().await,
            400,
            "InvalidBucketName",
            &format!("bucket name {name:?}"),
        );
    }
    // Nothing was created.
    let list = s3.list_buckets().send().await.unwrap();
    assert!(
        !list.buckets().iter().any(|b| b.name() == Some("ab")),
        "an invalid bucket was created"
    );
}

#[tokio::test]
async fn missing_bucket_and_key_codes() {
    let (_, s3) = client().await;
    let missing = unique("missing");
    assert_s3_error(
        s3.get_object().bucket(&missing).key("k").send().await,
        404,
        "NoSuchBucket",
        "get from a missing bucket",
    );
    assert_s3_error(
        s3.put_object()
            .bucket(&missing)
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        404,
        "NoSuchBucket",
        "put into a missing bucket",
    );
    assert_s3_error(
        s3.list_objects_v2().bucket(&missing).send().await,
        404,
        "NoSuchBucket",
        "list a missing bucket",
    );
    let (st, _) = failure(s3.head_bucket().bucket(&missing).send().await);
    assert_eq!(st, 404, "head of a missing bucket");

    let b = new_bucket(&s3, "nokey").await;
    assert_s3_error(
        s3.get_object().bucket(&b).key("nope").send().await,
        404,
        "NoSuchKey",
        "get a missing key",
    );
    let (st, code) = failure(s3.head_object().bucket(&b).key("nope").send().await);
    assert_eq!(st, 404, "head of a missing key ({code})");
}

// ---------------------------------------------------------------------------------------
// Auth.

#[tokio::test]
async fn auth_errors_and_other_users() {
    let (c, s3) = client().await;
    let b = new_bucket(&s3, "auth").await;
    put(&s3, &b, "secret.txt", b"mine").await;

    // Wrong secret → SignatureDoesNotMatch; unknown key → InvalidAccessKeyId.
    let wrong = c.s3_as(&c.access_key, "not-the-secret-0123456789");
    assert_s3_error(
        wrong.list_buckets().send().await,
        403,
        "SignatureDoesNotMatch",
        "list_buckets with a wrong secret",
    );
    assert_s3_error(
        wrong.get_object().bucket(&b).key("secret.txt").send().await,
        403,
        "SignatureDoesNotMatch",
        "get with a wrong secret",
    );
    let unknown = c.s3_as("SHALEUNKNOWNKEY00000", "whatever-secret");
    assert_s3_error(
        unknown.list_buckets().send().await,
        403,
        "InvalidAccessKeyId",
        "list_buckets with an unknown key",
    );

    // Another user: cannot see, read, write, list or delete the dev user's bucket; cannot
    // create a bucket with its name (BucketAlreadyExists); its own buckets are its own.
    let other_id = format!("OTHER{:015}", std::process::id());
    let other_secret = "other-user-secret-0123456789abcdef";
    c.create_access_key(&other_id, other_secret, "other-user")
        .await
        .unwrap();
    let other = c.s3_as(&other_id, other_secret);
    assert_s3_error(
        other.get_object().bucket(&b).key("secret.txt").send().await,
        403,
        "AccessDenied",
        "another user's GET",
    );
    assert_s3_error(
        other
            .put_object()
            .bucket(&b)
            .key("intruder")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
        403,
        "AccessDenied",
        "another user's PUT",
    );
    assert_s3_error(
        other.list_objects_v2().bucket(&b).send().await,
        403,
        "AccessDenied",
        "another user's LIST",
    );
    assert_s3_error(
        other.delete_bucket().bucket(&b).send().await,
        403,
        "AccessDenied",
        "another user's DELETE bucket",
    );
    let (st, _) = failure(other.head_bucket().bucket(&b).send().await);
    assert_eq!(st, 403, "another user's HEAD bucket");
    assert_s3_error(
        other.create_bucket().bucket(&b).send().await,
        409,
        "BucketAlreadyExists",
        "create another user's bucket name",
    );
    let ob = unique("other");
    other.create_bucket().bucket(&ob).send().await.unwrap();
    let theirs = other.list_buckets().send().await.unwrap();
    let names: Vec<&str> = theirs.buckets().iter().filter_map(|x| x.name()).collect();
    assert!(names.contains(&ob.as_str()), "own bucket listed: {names:?}");
    assert!(
        !names.contains(&b.as_str()),
        "the dev user's bucket is listed for another user: {names:?}"
    );
    assert_s3_error(
        s3.create_bucket().bucket(&ob).send().await,
        409,
        "BucketAlreadyExists",
        "dev user creates the other user's bucket name",
    );
    // Nothing changed.
    assert_eq!(get(&s3, &b, "secret.txt").await, b"mine");
    assert_s3_error(
        s3.get_object().bucket(&b).key("intruder").send().await,
        404,
        "NoSuchKey",
        "the refused PUT wrote nothing",
    );
}

#[tokio::test]
async fn presigned_get_url_works_over_plain_http() {
    let (_, s3) = client().await;
    let b = new_bucket(&s3, "presign").await;
    let body = data(10_000, 7);
    put(&s3, &b, "dir/file name.bin", &body).await;
    let req = s3
        .get_object()
        .bucket(&b)
        .key("dir/file name.bin")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    let url = req.uri().to_string();
    assert!(url.contains("X-Amz-Signature="), "presigned: {url}");
    let (status, got) = raw_http("GET", &url);
    assert_eq!(
        status,
        200,
        "presigned GET: {}",
        String::from_utf8_lossy(&got)
    );
    assert_bytes(&got, &body, "presigned GET body");

    // A tampered signature is refused.
    let sig_at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut bad = url.clone();
    let flipped = if &url[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    bad.replace_range(sig_at..sig_at + 1, flipped);
    let (status, body) = raw_http("GET", &bad);
    assert_eq!(
        status,
        403,
        "tampered presigned URL: {}",
        String::from_utf8_lossy(&body)
    );
    assert!(
        String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"),
        "tampered presigned URL: {}",
        String::from_utf8_lossy(&body)
    );

    // A presigned PUT works too.
    let put_req = s3
        .put_object()
        .bucket(&b)
        .key("uploaded")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    let url = put_req.uri().to_string();
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut sock = std::net::TcpStream::connect(host).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        sock,
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    )
    .unwrap();
    let mut resp = String::new();
    sock.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "presigned PUT: {resp}");
    assert_eq!(get(&s3, &b, "uploaded").await, b"hello");
}

// ---------------------------------------------------------------------------------------
// aws CLI + boto3.

#[tokio::test]
async fn aws_cli_and_boto3_smoke_script() {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if !python.is_ok_and(|o| o.status.success()) {
        eprintln!("python3 not found: the aws CLI / boto3 smoke test needs it; skipped");
        return;
    }
    let (c, _) = client().await;
    let script = tests::workspace_root().join("scripts").join("s3-smoke.sh");
    let endpoint = c.endpoint.clone();
    let (ak, sk) = (c.access_key.clone(), c.secret_key.clone());
    // Blocking is fine: the cluster is another process and nothing else runs on this
    // test's runtime.
    let out = std::process::Command::new("bash")
        .arg(&script)
        .args([&endpoint, &ak, &sk])
        .output()
        .expect("running scripts/s3-smoke.sh");
    assert!(
        out.status.success(),
        "scripts/s3-smoke.sh failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Wall-clock time through the env seam (clippy bans `SystemTime::now`).
fn wall_now() -> std::time::SystemTime {
    common::env::Clock::new().wall()
}

#[tokio::test]
async fn expired_presigned_url_and_skewed_clock_are_refused() {
    let (c, s3) = client().await;
    let b = new_bucket(&s3, "expiry").await;
    put(&s3, &b, "k", b"v").await;

    // Signed two hours ago, valid for one: expired.
    let req = s3
        .get_object()
        .bucket(&b)
        .key("k")
        .presigned(
            PresigningConfig::builder()
                .start_time(wall_now() - Duration::from_secs(7200))
                .expires_in(Duration::from_secs(3600))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let (status, body) = raw_http("GET", req.uri());
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "expired presigned URL: {body}");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");

    // A client whose clock is an hour behind (or ahead): RequestTimeTooSkewed. One
    // attempt only: the SDK corrects its clock from the response on a retry.
    for offset in [-3600i64, 3600] {
        let when = if offset < 0 {
            wall_now() - Duration::from_secs(3600)
        } else {
            wall_now() + Duration::from_secs(3600)
        };
        let conf = c
            .s3()
            .config()
            .to_builder()
            .time_source(aws_smithy_async::time::StaticTimeSource::new(when))
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build();
        let skewed = Client::from_conf(conf);
        assert_s3_error(
            skewed.list_buckets().send().await,
            403,
            "RequestTimeTooSkewed",
            &format!("clock off by {offset} s"),
        );
    }
}
