//! An invalid `Range` header is ignored: S3 (and RFC 7233 §3.1: a server MAY ignore
//! Range) answers a GET/HEAD whose Range has last < first, an unknown unit, several
//! ranges or any other syntax error with `200` and the whole object. s3s rejects such a
//! header with `400 InvalidArgument` while deserialising the operation, *after* the
//! signature check, and the header cannot be dropped before s3s sees it: clients sign it.
//!
//! So [`IgnoreInvalidRange`] is an s3s custom route: it claims a GET/HEAD whose Range
//! s3s would refuse, s3s verifies its signature as usual, and the route then passes the
//! request without the Range header (and without its now-consumed signature) to a
//! second service over the same gateway. That service's access check trusts the
//! [`Forwarded`] access key (an extension only this route sets; clients cannot) and
//! applies the usual policy (clock skew, bucket owner). A syntactically valid range that
//! starts at or past the end of the object never comes here: it stays `416 InvalidRange`.

use hyper::http::Extensions;
use hyper::{HeaderMap, Method, Uri};
use s3s::dto::Range;
use s3s::route::S3Route;
use s3s::service::S3Service;
use s3s::{Body, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::error::s3;

/// The access key whose signature the outer service verified, for the inner one.
#[derive(Clone, Debug)]
pub(crate) struct Forwarded {
    pub access_key: String,
}

/// The custom route (see the module doc).
pub(crate) struct IgnoreInvalidRange {
    /// The same gateway, without this route, trusting [`Forwarded`].
    pub inner: S3Service,
}

/// Whether `headers` hold a Range header to ignore: not one RFC 7233 `bytes=` range
/// (`first-[last]` or `-suffix`, digits only), or one s3s would refuse (last < first,
/// beyond i64). Several Range headers count: their union is a multi-range request,
/// which S3 does not serve either.
pub(crate) fn unusable_range(headers: &HeaderMap) -> bool {
    let mut all = headers.get_all(hyper::header::RANGE).iter();
    match (all.next(), all.next()) {
        (None, _) => false,
        (Some(_), Some(_)) => true,
        (Some(v), None) => v
            .to_str()
            .map_or(true, |s| !one_byte_range(s) || Range::parse(s).is_err()),
    }
}

/// `bytes=FIRST-[LAST]` or `bytes=-SUFFIX` (RFC 7233 §2.1, one range).
fn one_byte_range(s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let Some((first, last)) = s.strip_prefix("bytes=").and_then(|r| r.split_once('-')) else {
        return false;
    };
    if first.is_empty() {
        digits(last)
    } else {
        digits(first) && (last.is_empty() || digits(last))
    }
}

/// Query parameters that carry a presigned URL's signature (SigV4 and SigV2).
const PRESIGN_PARAMS: [&str; 10] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];

/// `uri` without the presigned-URL parameters (their signature has been checked).
pub(crate) fn without_presign_params(uri: &Uri) -> S3Result<Uri> {
    let Some(query) = uri.query() else {
        return Ok(uri.clone());
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| {
            let name = p.split_once('=').map_or(*p, |(n, _)| n);
            !p.is_empty() && !PRESIGN_PARAMS.contains(&name)
        })
        .collect();
    let path = uri.path();
    let pq = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        pq.parse()
            .map_err(|_| s3(S3ErrorCode::InvalidURI, "invalid request URI"))?,
    );
    Uri::from_parts(parts).map_err(|_| s3(S3ErrorCode::InvalidURI, "invalid request URI"))
}

#[async_trait::async_trait]
impl S3Route for IgnoreInvalidRange {
    fn is_match(
        &self,
        method: &Method,
        _uri: &Uri,
        headers: &HeaderMap,
        _extensions: &mut Extensions,
    ) -> bool {
        (method == Method::GET || method == Method::HEAD) && unusable_range(headers)
    }

    // `check_access`: the default (a verified signature is required).

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let Some(cred) = req.credentials else {
            return Err(s3(S3ErrorCode::AccessDenied, "Signature is required"));
        };
        let mut headers = req.headers;
        headers.remove(hyper::header::RANGE);
        headers.remove(hyper::header::AUTHORIZATION);
        let mut inner = hyper::Request::new(req.input);
        *inner.method_mut() = req.method;
        *inner.uri_mut() = without_presign_params(&req.uri)?;
        *inner.headers_mut() = headers;
        inner.extensions_mut().insert(Forwarded {
            access_key: cred.access_key,
        });
        let resp = self.inner.call(inner).await.map_err(|e| {
            tracing::error!(error = %e, "forwarding a request without its Range failed");
            s3(S3ErrorCode::InternalError, "internal error")
        })?;
        let (parts, body) = resp.into_parts();
        let mut out = S3Response::new(body);
        out.status = Some(parts.status);
        out.headers = parts.headers;
        out.extensions = parts.extensions;
        Ok(out)
    }
}

// Real loopback TCP, as in server_test.rs.
#[cfg(all(test, not(madsim)))]
#[path = "range_route_test.rs"]
mod range_route_test;
