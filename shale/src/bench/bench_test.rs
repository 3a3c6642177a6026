//! Tests of the load generator itself: parsing, percentiles, and whole runs against a
//! small in-process S3 stand-in that can lie (flip a byte, keep deleted objects) or fail
//! (SlowDown), to show the tool notices. (S3 behaviour itself is tested with real SDKs
//! in tests/.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};

use super::content::{encode_query, key_name, Content, Shape};
use super::*;

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("4KiB").expect("kib"), 4096);
    assert_eq!(parse_size("1MiB").expect("mib"), 1 << 20);
    assert_eq!(parse_size("2GiB").expect("gib"), 2 << 30);
    assert_eq!(parse_size("123").expect("bytes"), 123);
    assert!(parse_size("1TB").is_err());
    assert_eq!(
        SizeDist::parse("4KiB..1MiB").expect("range"),
        SizeDist::Uniform(4096, 1 << 20)
    );
    assert_eq!(
        SizeDist::parse("4KiB:90,1MiB:10").expect("weighted"),
        SizeDist::Weighted(vec![(4096, 90), (1 << 20, 10)])
    );
    assert!(SizeDist::parse("1MiB..4KiB").is_err());
    assert!(SizeDist::parse("4KiB:0").is_err());
    assert!(SizeDist::parse("4KiB:x").is_err());
}

#[test]
fn size_distributions_draw_within_bounds_and_weights() {
    let u = SizeDist::Uniform(10, 20);
    let draws: Vec<usize> = (0..1000u64)
        .map(|i| u.sample(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();
    assert!(draws.iter().all(|d| (10..=20).contains(d)));
    assert!(draws.contains(&10) && draws.contains(&20));
    let w = SizeDist::parse("1:3,2:1").expect("weighted");
    let ones = (0..4000u64).filter(|r| w.sample(*r) == 1).count();
    assert_eq!(ones, 3000, "weights 3:1 over a full cycle of residues");
    assert_eq!(w.max(), 2);
}

#[test]
fn durations_and_mixes_parse() {
    assert_eq!(parse_duration("500ms").expect("ms").as_millis(), 500);
    assert_eq!(parse_duration("30s").expect("s").as_secs(), 30);
    assert_eq!(parse_duration("2m").expect("m").as_secs(), 120);
    assert_eq!(parse_duration("7").expect("plain").as_secs(), 7);
    assert!(parse_duration("soon").is_err());
    let mix = parse_mix("get=60,put=30,delete=5,list=5").expect("mix");
    assert_eq!(mix.len(), 4);
    assert!(parse_mix("get=0").is_err());
    assert!(parse_mix("head=1").is_err());
    let only_put = parse_mix("put=1,get=0").expect("mix");
    assert!((0..100).all(|r| draw(&only_put, r) == Op::Put));
}

#[test]
fn percentiles() {
    let mut r = Report {
        latencies_us: (1..=100).rev().collect(),
        ..Report::default()
    };
    r.finish(std::time::Duration::from_secs(1), None);
    assert_eq!(r.pct(0.5), 51);
    assert_eq!(r.pct(0.99), 99);
    assert_eq!(r.pct(1.0), 100);
    assert_eq!(Report::default().pct(0.5), 0);
}

#[test]
fn endpoints() {
    assert_eq!(
        endpoint("http://127.0.0.1:9000/").expect("ok"),
        "127.0.0.1:9000".parse().expect("addr")
    );
    assert!(endpoint("https://x:1").is_err());
}

#[test]
fn json_report_is_one_object_with_escaped_codes() {
    let mut r = Report::new("get", "GET");
    r.success(10, std::time::Duration::from_millis(2));
    r.error("quote\"code");
    r.finish(
        std::time::Duration::from_secs(1),
        Some(std::time::Duration::from_millis(5)),
    );
    let j = r.json(4, 2);
    assert!(j.starts_with('{') && j.ends_with('}'), "{j}");
    assert!(j.contains("\"quote\\\"code\":1"), "{j}");
    assert!(j.contains("\"client_cpu_us_per_op\":2500.0"), "{j}");
    assert!(j.contains("\"ops\":1,"), "{j}");
}

#[test]
fn expected_bytes_follow_parts_and_generations() {
    let env = Env::seeded(1);
    let c = Content::new(&env, 100);
    let single = Shape {
        generation: 1,
        size: 100,
        part: None,
    };
    assert_eq!(c.expected(7, &single, 0, 1000), &c.window(7, 1, 0, 100)[..]);
    assert_ne!(c.window(7, 1, 0, 100), c.window(7, 2, 0, 100));
    let multi = Shape {
        generation: 3,
        size: 250,
        part: Some(100),
    };
    // A read crossing a part boundary stops at it.
    assert_eq!(c.expected(7, &multi, 90, 50), &c.window(7, 3, 0, 100)[90..]);
    assert_eq!(c.expected(7, &multi, 200, 500), &c.window(7, 3, 2, 50)[..]);
    assert_eq!(key_name("b/", 16, 35), "b/p003/00000035");
    assert_eq!(encode_query("a/b=c d"), "a%2Fb%3Dc%20d");
}

/// How the stand-in misbehaves.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// Flip one byte in the middle of every GET body.
    flip_byte: bool,
    /// Answer every third object PUT with 503 SlowDown.
    slow_down: bool,
    /// Answer DELETE with 204 but keep the object.
    ignore_delete: bool,
}

#[derive(Default)]
struct Store {
    objects: Mutex<BTreeMap<String, Bytes>>,
    puts: AtomicU64,
}

fn xml(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    r
}

fn s3_error(status: u16, code: &str) -> Response<Full<Bytes>> {
    xml(
        status,
        format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>x</Message></Error>"),
    )
}

async fn handle(
    store: Arc<Store>,
    faults: Faults,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(s3_error(400, "IncompleteBody")),
    };
    let is_bucket = path.matches('/').count() == 1;
    let mut objects = store.objects.lock().unwrap_or_else(|e| e.into_inner());
    let resp = match (method.as_str(), is_bucket) {
        ("PUT", true) => xml(200, String::new()),
        ("PUT", false) => {
            let n = store.puts.fetch_add(1, Ordering::Relaxed);
            if faults.slow_down && n % 3 == 2 {
                s3_error(503, "SlowDown")
            } else {
                let etag = hex::encode(Md5::digest(&body));
                let name = if query.contains("partNumber=") {
                    format!("{path}?{query}")
                } else {
                    path.clone()
                };
                objects.insert(name, body);
                let mut r = xml(200, String::new());
                if let Ok(v) = format!("\"{etag}\"").parse() {
                    r.headers_mut().insert("etag", v);
                }
                r
            }
        }
        ("GET", true) => {
            let keys: Vec<String> = objects
                .keys()
                .filter(|k| !k.contains('?'))
                .map(|k| format!("<Contents><Key>{k}</Key></Contents>"))
                .collect();
            xml(
                200,
                format!(
                    "<ListBucketResult><IsTruncated>false</IsTruncated>{}</ListBucketResult>",
                    keys.join("")
                ),
            )
        }
        ("GET", false) => match objects.get(&path) {
            Some(b) => {
                let mut v = b.to_vec();
                if faults.flip_byte && !v.is_empty() {
                    let i = v.len() / 2;
                    v[i] ^= 0x40;
                }
                xml(200, String::new()).map(|_| Full::new(Bytes::from(v)))
            }
            None => s3_error(404, "NoSuchKey"),
        },
        ("DELETE", false) => {
            if !faults.ignore_delete {
                objects.remove(&path);
            }
            xml(204, String::new())
        }
        ("POST", false) if query == "uploads" => xml(
            200,
            "<InitiateMultipartUploadResult><UploadId>up/1=</UploadId></InitiateMultipartUploadResult>"
                .into(),
        ),
        ("POST", false) => {
            // Complete: the ETag from the stored parts' MD5s, in part order.
            let mut md5s = Vec::new();
            let mut n = 1;
            while let Some(p) = objects.get(&format!("{path}?partNumber={n}&uploadId=up%2F1%3D")) {
                md5s.extend_from_slice(&Md5::digest(p));
                n += 1;
            }
            xml(
                200,
                format!(
                    "<CompleteMultipartUploadResult><ETag>&quot;{}-{}&quot;</ETag></CompleteMultipartUploadResult>",
                    hex::encode(Md5::digest(&md5s)),
                    n - 1
                ),
            )
        }
        _ => s3_error(501, "NotImplemented"),
    };
    Ok(resp)
}

/// Starts the stand-in on 127.0.0.1 (stopped when the test's runtime ends).
async fn stand_in(env: &Env, faults: Faults) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let store = Arc::new(Store::default());
    let env2 = env.clone();
    env.spawn("bench-stand-in", async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = Arc::clone(&store);
            env2.spawn("bench-stand-in-conn", async move {
                let svc =
                    hyper::service::service_fn(move |req| handle(Arc::clone(&store), faults, req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn args(addr: SocketAddr, workload: Workload) -> BenchArgs {
    BenchArgs {
        endpoint: format!("http://{addr}"),
        access_key: "AK".into(),
        secret_key: "SK".into(),
        region: "us-east-1".into(),
        bucket: "b".into(),
        workload,
        size: "1KiB..40KiB".into(),
        concurrency: 4,
        count: Some(40),
        duration: None,
        keys: None,
        prefixes: 4,
        prefix: "bench/".into(),
        mix: "get=60,put=30,delete=5,list=5".into(),
        part_size: "16KiB".into(),
        part_concurrency: 2,
        seed: Some(7),
        json: false,
        quiet: true,
    }
}

fn report<'a>(r: &'a BenchResult, phase: &str, op: &str) -> &'a Report {
    r.reports
        .iter()
        .find(|x| x.phase == phase && x.op == op)
        .unwrap_or_else(|| panic!("no {phase} {op} report in {:?}", r.reports))
}

#[tokio::test]
async fn an_honest_server_gives_clean_reports() {
    let env = Env::seeded(1);
    let addr = stand_in(&env, Faults::default()).await;
    let r = bench(&env, &args(addr, Workload::Both))
        .await
        .expect("bench");
    assert_eq!(r.corrupt(), 0, "{:?}", r.corruption);
    assert_eq!(r.errors(), 0);
    let put = report(&r, "put", "PUT");
    let get = report(&r, "get", "GET");
    assert_eq!((put.ops, get.ops), (40, 40));
    assert_eq!(put.bytes, get.bytes, "GET read what PUT wrote");
    assert!(put.bytes >= 40 * 1024);
    assert_eq!(get.latencies_us.len(), 40);
    assert_eq!(
        get.misses, 0,
        "the PUT phase wrote every key of the key space"
    );
}

#[tokio::test]
async fn a_flipped_byte_in_a_get_is_reported_as_corruption() {
    let env = Env::seeded(2);
    let faults = Faults {
        flip_byte: true,
        ..Faults::default()
    };
    let addr = stand_in(&env, faults).await;
    let r = bench(&env, &args(addr, Workload::Get))
        .await
        .expect("bench");
    let get = report(&r, "get", "GET");
    assert_eq!(get.corrupt, 40, "every GET was altered");
    assert_eq!(get.ops, 0, "a corrupt GET is not a success");
    assert!(
        r.corruption.iter().any(|c| c.contains("bytes differ")),
        "{:?}",
        r.corruption
    );
}

#[tokio::test]
async fn errors_are_counted_by_s3_code_and_failed_puts_are_not_verified() {
    let env = Env::seeded(3);
    let faults = Faults {
        slow_down: true,
        ..Faults::default()
    };
    let addr = stand_in(&env, faults).await;
    let r = bench(&env, &args(addr, Workload::Both))
        .await
        .expect("bench");
    let put = report(&r, "put", "PUT");
    assert_eq!(put.errors.get("SlowDown"), Some(&13), "{:?}", put.errors);
    assert_eq!(put.ops, 27);
    let get = report(&r, "get", "GET");
    assert_eq!(r.corrupt(), 0, "{:?}", r.corruption);
    assert_eq!(get.misses, 13, "keys whose PUT failed answer NoSuchKey");
}

#[tokio::test]
async fn a_deleted_object_that_still_reads_is_reported() {
    let env = Env::seeded(4);
    let faults = Faults {
        ignore_delete: true,
        ..Faults::default()
    };
    let addr = stand_in(&env, faults).await;
    let mut a = args(addr, Workload::Mixed);
    a.mix = "delete=1,get=1".into();
    a.count = Some(200);
    a.keys = Some(8);
    let r = bench(&env, &a).await.expect("bench");
    assert!(r.corrupt() > 0, "GETs after DELETE must notice");
    assert!(
        r.corruption.iter().any(|c| c.contains("deleted object")),
        "{:?}",
        r.corruption
    );

    // The same workload against an honest server: misses, no corruption.
    let env = Env::seeded(4);
    let addr = stand_in(&env, Faults::default()).await;
    let mut a = args(addr, Workload::Mixed);
    a.mix = "delete=1,get=1".into();
    a.count = Some(200);
    a.keys = Some(8);
    let r = bench(&env, &a).await.expect("bench");
    assert_eq!(r.corrupt(), 0, "{:?}", r.corruption);
    assert!(report(&r, "mixed", "GET").misses > 0);
}

#[tokio::test]
async fn listings_and_multipart_etags_are_checked() {
    let env = Env::seeded(5);
    let addr = stand_in(&env, Faults::default()).await;
    let mut a = args(addr, Workload::List);
    a.keys = Some(30);
    a.count = Some(3);
    let r = bench(&env, &a).await.expect("bench");
    assert_eq!(report(&r, "list", "LIST").ops, 3);
    assert_eq!(r.corrupt(), 0, "{:?}", r.corruption);

    let mut a = args(addr, Workload::Multipart);
    a.size = "50KiB".into();
    a.count = Some(4);
    let r = bench(&env, &a).await.expect("bench");
    let mpu = report(&r, "multipart", "MPU");
    assert_eq!(
        (mpu.ops, mpu.bytes),
        (4, 4 * 50 * 1024),
        "{:?}",
        r.corruption
    );
}
