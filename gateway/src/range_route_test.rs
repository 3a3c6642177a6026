use std::net::SocketAddr;

use bytes::Bytes;
use common::env::Env;
use hyper::header::{HeaderValue, RANGE};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::dto::{GetObjectInput, GetObjectOutput, StreamingBlob};
use s3s::service::S3ServiceBuilder;
use s3s::{S3Request, S3Result, S3};

use super::*;
use crate::client::S3Client;

fn range_headers(values: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(RANGE, HeaderValue::from_str(v).expect("header value"));
    }
    h
}

#[test]
fn ranges_s3s_refuses_are_unusable() {
    for bad in [
        &["bytes=3-1"][..],
        &["bits=1-2"],
        &["bytes=0-1,3-4"],
        &["bytes=x-"],
        &["bytes=-"],
        &["bytes=--1"],
        &["bytes=1-2-3"],
        &["bytes= 0-1"],
        &["0-1"],
        &["bytes=0-1", "bytes=2-3"],
    ] {
        assert!(unusable_range(&range_headers(bad)), "{bad:?}");
    }
    // Valid syntax, even when past the end of any object (that stays 416).
    for good in [
        &[][..],
        &["bytes=0-0"],
        &["bytes=1-"],
        &["bytes=-3"],
        &["bytes=-0"],
        &["bytes=1000000-2000000"],
    ] {
        assert!(!unusable_range(&range_headers(good)), "{good:?}");
    }
}

#[test]
fn presign_params_are_dropped_and_others_kept() {
    let uri: Uri = "/b/k?versionId=abc&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ff&response-content-type=text%2Fplain&X-Amz-Credential=a%2Fb"
        .parse()
        .expect("uri");
    assert_eq!(
        without_presign_params(&uri).expect("uri").to_string(),
        "/b/k?versionId=abc&response-content-type=text%2Fplain"
    );
    let uri: Uri = "/b/k?Signature=x&AWSAccessKeyId=y&Expires=1"
        .parse()
        .expect("uri");
    assert_eq!(
        without_presign_params(&uri).expect("uri").to_string(),
        "/b/k"
    );
    let uri: Uri = "/b/k".parse().expect("uri");
    assert_eq!(
        without_presign_params(&uri).expect("uri").to_string(),
        "/b/k"
    );
}

/// Answers GetObject with what it was given: the Range it parsed and the caller.
struct Echo;

#[async_trait::async_trait]
impl S3 for Echo {
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let who = req
            .credentials
            .as_ref()
            .map(|c| format!("signed:{}", c.access_key))
            .or_else(|| {
                req.extensions
                    .get::<Forwarded>()
                    .map(|f| format!("forwarded:{}", f.access_key))
            })
            .unwrap_or_default();
        let text = format!("range={:?} by={who}", req.input.range);
        Ok(S3Response::new(GetObjectOutput {
            body: Some(StreamingBlob::from(Body::from(text))),
            ..Default::default()
        }))
    }
}

/// The gateway's rule for forwarded requests, without the key store.
struct TrustForwarded;

#[async_trait::async_trait]
impl S3Access for TrustForwarded {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_some() || cx.extensions_mut().get::<Forwarded>().is_some() {
            Ok(())
        } else {
            Err(s3(S3ErrorCode::AccessDenied, "anonymous"))
        }
    }
}

async fn serve_echo() -> SocketAddr {
    let inner = {
        let mut b = S3ServiceBuilder::new(Echo);
        b.set_auth(SimpleAuth::from_single("AK", "SECRET"));
        b.set_access(TrustForwarded);
        b.build()
    };
    let mut b = S3ServiceBuilder::new(Echo);
    b.set_auth(SimpleAuth::from_single("AK", "SECRET"));
    b.set_route(IgnoreInvalidRange { inner });
    let service = b.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let env = Env::seeded(7);
    env.clone().spawn("test-serve", async move {
        let _ = crate::server::serve(env, listener, service, std::future::pending()).await;
    });
    addr
}

#[tokio::test]
async fn an_invalid_range_reaches_the_handler_as_no_range_after_the_signature_check() {
    let addr = serve_echo().await;
    let client = S3Client::new(Env::seeded(8), addr, "AK", "SECRET");
    let get = |range: &'static str| {
        let client = client.clone();
        async move {
            client
                .send("GET", "/bkt/k", Bytes::new(), &[("range", range)])
                .await
                .expect("request")
        }
    };
    for bad in ["bytes=3-1", "bits=1-2", "bytes=0-1,3-4"] {
        let r = get(bad).await;
        assert_eq!(r.status, 200, "{bad}: {r:?}");
        assert_eq!(&r.body[..], b"range=None by=forwarded:AK", "{bad}");
    }
    // A valid range takes the ordinary path.
    let r = get("bytes=1-2").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        std::str::from_utf8(&r.body).expect("utf-8"),
        "range=Some(Int { first: 1, last: Some(2) }) by=signed:AK"
    );
    // The signature is still checked: a wrong secret is refused before forwarding.
    let wrong = S3Client::new(Env::seeded(9), addr, "AK", "NOT-THE-SECRET");
    let r = wrong
        .send("GET", "/bkt/k", Bytes::new(), &[("range", "bytes=3-1")])
        .await
        .expect("request");
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.error_code().as_deref(), Some("SignatureDoesNotMatch"));
}
