//! The S3 endpoint over HTTPS: `shale dev --tls-cert --tls-key` with a self-signed
//! certificate for 127.0.0.1 (made by rcgen), driven by real clients — curl (SigV4
//! through `--aws-sigv4`, and a presigned URL from aws-sdk-s3's presigner, verified with
//! `--cacert`) and, when python3 is there, the aws CLI + boto3 smoke script with
//! `SHALE_SMOKE_CA_BUNDLE`. Plain HTTP and garbage on the TLS port are refused cleanly
//! and the gateway keeps serving.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use tests::cluster::{DevCluster, REGION};
use tests::TempDir;

use crate::s3::data;

/// curl against the HTTPS endpoint, trusting only the test certificate.
struct Curl {
    endpoint: String,
    ca: PathBuf,
    access_key: String,
    secret_key: String,
    out: PathBuf,
}

/// What a curl run gave: its exit code, the HTTP status (0 if none) and the body.
#[derive(Debug)]
struct Reply {
    exit: i32,
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Curl {
    /// `curl ARGS` (bounded by `--max-time`); `ca`: trust this bundle, else the system's.
    fn run(&self, ca: bool, args: &[&str]) -> Reply {
        let _ = std::fs::remove_file(&self.out);
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "60", "-o"])
            .arg(&self.out)
            .args(["-w", "%{http_code}"]);
        if ca {
            cmd.arg("--cacert").arg(&self.ca);
        }
        let o = cmd.args(args).output().expect("running curl");
        let status = String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        Reply {
            exit: o.status.code().unwrap_or(-1),
            status,
            body: std::fs::read(&self.out).unwrap_or_default(),
        }
    }

    /// A SigV4-signed S3 request (`--aws-sigv4`) with `secret`, over https.
    fn signed_with(&self, secret: &str, path: &str, args: &[&str]) -> Reply {
        let url = format!("{}{path}", self.endpoint);
        let user = format!("{}:{secret}", self.access_key);
        let sigv4 = format!("aws:amz:{REGION}:s3");
        let mut all = vec![
            "--aws-sigv4",
            &sigv4,
            "--user",
            &user,
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        ];
        all.extend_from_slice(args);
        all.push(&url);
        self.run(true, &all)
    }

    fn signed(&self, path: &str, args: &[&str]) -> Reply {
        self.signed_with(&self.secret_key.clone(), path, args)
    }
}

/// A raw TCP exchange with the TLS port: sends `bytes`, reads until the server closes
/// (bounded by a read timeout). `None` if the server did not close in time.
fn raw_exchange(addr: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => Some(got),
        // A reset after the answer (the server closed with input unread) also ends it.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(got),
        Err(_) => None,
    }
}

fn write_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("self-signed certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[tokio::test]
async fn s3_over_https_with_a_self_signed_certificate() {
    let curl_ok = Command::new("curl").arg("--version").output();
    assert!(
        curl_ok.is_ok_and(|o| o.status.success()),
        "this test needs curl on PATH"
    );
    let dir = TempDir::new("s3-tls");
    let (cert, key) = write_cert(dir.path());
    let c = DevCluster::start_tls(&cert, &key)
        .await
        .expect("starting shale dev with TLS");
    assert!(c.endpoint.starts_with("https://"), "{}", c.endpoint);
    let banner = c.log_tail(40);
    assert!(
        banner.contains(&format!("S3 endpoint: {}", c.endpoint)),
        "banner:\n{banner}"
    );
    assert!(
        banner.contains(&format!("--ca-bundle {}", cert.display())),
        "banner:\n{banner}"
    );

    let curl = Curl {
        endpoint: c.endpoint.clone(),
        ca: cert.clone(),
        access_key: c.access_key.clone(),
        secret_key: c.secret_key.clone(),
        out: dir.path().join("curl.out"),
    };

    // The server presents our certificate: without it as a CA, curl refuses (60).
    let r = curl.run(false, &[&format!("{}/", c.endpoint)]);
    assert_eq!(r.exit, 60, "curl without --cacert: {r:?}");

    // Signed S3 requests over https: bucket, a 300 KB object (erasure-coded), read back,
    // listed; a wrong secret is refused.
    let r = curl.signed("/tls-bucket", &["-X", "PUT"]);
    assert_eq!((r.exit, r.status), (0, 200), "create bucket: {}", r.text());
    let body = data(300_000, 11);
    let src = dir.path().join("object.bin");
    std::fs::write(&src, &body).unwrap();
    let r = curl.signed(
        "/tls-bucket/dir/object.bin",
        &["-T", &src.display().to_string()],
    );
    assert_eq!((r.exit, r.status), (0, 200), "PUT object: {}", r.text());
    let r = curl.signed("/tls-bucket/dir/object.bin", &[]);
    assert_eq!((r.exit, r.status), (0, 200), "GET object: {}", r.text());
    crate::s3::assert_bytes(&r.body, &body, "GET over https");
    let r = curl.signed("/tls-bucket?list-type=2", &[]);
    assert_eq!(r.status, 200, "list: {}", r.text());
    assert!(
        r.text().contains("<Key>dir/object.bin</Key>"),
        "{}",
        r.text()
    );
    let r = curl.signed_with("wrong-secret", "/tls-bucket/dir/object.bin", &[]);
    assert_eq!(r.status, 403, "wrong secret: {}", r.text());
    assert!(r.text().contains("SignatureDoesNotMatch"), "{}", r.text());

    // A presigned URL (aws-sdk-s3's presigner, for the https endpoint) fetched by curl.
    let presigned = c
        .s3()
        .get_object()
        .bucket("tls-bucket")
        .key("dir/object.bin")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .expect("presign");
    let url = presigned.uri().to_string();
    assert!(url.starts_with("https://"), "{url}");
    let r = curl.run(true, &[&url]);
    assert_eq!((r.exit, r.status), (0, 200), "presigned GET: {}", r.text());
    crate::s3::assert_bytes(&r.body, &body, "presigned GET over https");

    // Plain HTTP on the TLS port: an S3 error telling the client to use https://, and
    // the connection closed.
    let addr = format!("127.0.0.1:{}", c.listen_port);
    let got = raw_exchange(
        &addr,
        b"GET /tls-bucket/dir/object.bin HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .expect("the server closes a plain-HTTP connection");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("<Code>InvalidRequest</Code>"), "{text}");
    assert!(text.contains("use https://"), "{text}");
    // The same through curl: a clean 400, not a hang or a protocol error.
    let r = curl.run(false, &[&format!("http://{addr}/tls-bucket")]);
    assert_eq!(
        (r.exit, r.status),
        (0, 400),
        "curl http:// on the TLS port: {r:?}"
    );
    // A TLS record header followed by garbage, and a client that leaves at once.
    raw_exchange(
        &addr,
        &[0x16, 0x03, 0x01, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef],
    )
    .expect("the server closes after a failed handshake");
    drop(std::net::TcpStream::connect(&addr).expect("connect"));

    // The gateway lives on and still serves signed requests over https.
    assert!(c.is_running(), "shale dev died:\n{}", c.log_tail(40));
    let r = curl.signed("/tls-bucket/dir/object.bin", &["-I"]);
    assert_eq!(
        (r.exit, r.status),
        (0, 200),
        "HEAD after the refusals: {r:?}"
    );

    // The aws CLI and boto3 over https, trusting the certificate as their CA bundle.
    let python = Command::new("python3").arg("--version").output();
    if python.is_ok_and(|o| o.status.success()) {
        let script = tests::workspace_root().join("scripts").join("s3-smoke.sh");
        let out = Command::new("bash")
            .arg(&script)
            .args([&c.endpoint, &c.access_key, &c.secret_key])
            .env("SHALE_SMOKE_CA_BUNDLE", &cert)
            .output()
            .expect("running scripts/s3-smoke.sh");
        assert!(
            out.status.success(),
            "scripts/s3-smoke.sh over https failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("python3 not found: the aws CLI / boto3 part over https was skipped");
    }
    assert!(c.is_running(), "shale dev died:\n{}", c.log_tail(40));
}
