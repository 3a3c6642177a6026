//! `Gateway`: the S3 semantics over the metadata plane (`MetaClient`) and the data path
//! (`DataPlane`). The operations live in `ops_*.rs` (one file per family); this file
//! holds what they share: request context, ids and timestamps, object headers, the
//! streaming body store (inline or erasure coded, hashed and verified before commit) and
//! the streaming body reader.

use std::collections::BTreeMap;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use common::codec::CodecParams;
use common::env::Env;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use http::{Extensions, HeaderMap};
use meta_raft::client::MetaClient;
use meta_raft::state_machine::{
    BucketRecord, ObjectBody, ObjectMeta, Precondition, VersionRecord, Versioning,
};
use s3s::dto::{ETag, ETagCondition, StreamingBlob, Timestamp};
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{S3Error, S3ErrorCode, S3Result};

use crate::auth::RequestCtx;
use crate::checksum::{self, BodyDigest, Declared, Digest};
use crate::config::GatewayConfig;
use crate::data::{DataError, DataPlane};
use crate::error::{self, s3};

/// S3's limit on user-defined metadata (`x-amz-meta-*` names and values), in bytes.
pub const USER_METADATA_MAX_BYTES: usize = 2048;
/// S3's minimum size of every part but the last: the default of
/// [`GatewayConfig::min_part_bytes`].
pub const MIN_PART_BYTES: u64 = 5 << 20;

/// The S3 service: stateless; every request goes to the metadata plane and data nodes.
/// Clones share everything (clients, caches, the environment).
#[derive(Clone)]
pub struct Gateway {
    pub(crate) env: Env,
    pub(crate) meta: MetaClient,
    pub(crate) data: DataPlane,
    pub(crate) cfg: GatewayConfig,
    pub(crate) codec: CodecParams,
}

/// A stored body: where the bytes went and what they hash to.
pub(crate) struct Stored {
    pub body: ObjectBody,
    pub digest: Digest,
}

impl Gateway {
    pub fn new(
        env: Env,
        meta: MetaClient,
        data: DataPlane,
        cfg: GatewayConfig,
    ) -> Result<Self, String> {
        let codec = cfg.codec_params()?;
        Ok(Gateway {
            env,
            meta,
            data,
            cfg,
            codec,
        })
    }

    pub fn meta(&self) -> &MetaClient {
        &self.meta
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.env.clock().unix_ms()
    }

    /// A fresh opaque id (version ids, upload ids): 32 lowercase hex digits.
    pub(crate) fn new_id(&self) -> String {
        format!("{:032x}", self.env.random_u128())
    }

    /// The version id a new write gets in `bucket`.
    pub(crate) fn version_id_for(&self, bucket: &BucketRecord) -> String {
        match bucket.versioning {
            Versioning::Enabled => self.new_id(),
            Versioning::Unversioned | Versioning::Suspended => {
                meta_raft::state_machine::NULL_VERSION_ID.to_owned()
            }
        }
    }

    /// Reads a body into the cluster: small bodies inline (≤ `inline_max_bytes`, and only
    /// when `allow_inline`), larger ones through a `StripeWriter` as they arrive. Hashes
    /// everything, enforces the size limit, and verifies declared digests (headers and
    /// trailers) after the last byte — before anything is committed. On any error the
    /// fragments written so far are deleted (best effort).
    pub(crate) async fn store_body(
        &self,
        body: Option<StreamingBlob>,
        declared: &Declared,
        trailers: Option<&s3s::TrailingHeaders>,
        allow_inline: bool,
        codec: CodecParams,
    ) -> S3Result<Stored> {
        let mut digest = BodyDigest::new(&declared.compute);
        let mut inline = BytesMut::new();
        let mut writer = None;
        let inline_max = if allow_inline {
            self.cfg.inline_max_bytes as usize
        } else {
            0
        };
        if let Some(mut body) = body {
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        if let Some(w) = writer.take() {
                            crate::data::StripeWriter::abort(w).await;
                        }
                        return Err(body_error(e));
                    }
                };
                digest.update(&chunk);
                if digest.size() > self.cfg.max_object_bytes {
                    if let Some(w) = writer.take() {
                        crate::data::StripeWriter::abort(w).await;
                    }
                    return Err(s3(
                        S3ErrorCode::EntityTooLarge,
                        "Your proposed upload exceeds the maximum allowed object size.",
                    ));
                }
                let pending = match writer.as_mut() {
                    Some(w) => Some(w.write(chunk).await),
                    None => {
                        inline.extend_from_slice(&chunk);
                        if inline.len() > inline_max {
                            let mut w = self.data.writer(codec);
                            let r = w.write(inline.split().freeze()).await;
                            writer = Some(w);
                            Some(r)
                        } else {
                            None
                        }
                    }
                };
                if let Some(Err(e)) = pending {
                    if let Some(w) = writer.take() {
                        crate::data::StripeWriter::abort(w).await;
                    }
                    return Err(error::data(e));
                }
            }
        }
        let digest = digest.finish();
        let trailer_map = trailers.and_then(|t| t.take());
        // Only aws-chunked bodies (which s3s gives a trailer handle) can carry trailers.
        let trailer_ok = match trailers {
            Some(_) => checksum::check_trailer(declared, trailer_map.as_ref()),
            None => Ok(()),
        };
        if let Err(e) =
            trailer_ok.and_then(|()| checksum::verify(declared, trailer_map.as_ref(), &digest))
        {
            if let Some(w) = writer.take() {
                crate::data::StripeWriter::abort(w).await;
            }
            return Err(e);
        }
        let body = match writer {
            Some(w) => ObjectBody::Stripes {
                codec,
                stripes: w.finish().await.map_err(error::data)?,
            },
            None if allow_inline => ObjectBody::Inline(inline.to_vec()),
            None => {
                // Parts are always striped; an empty part has no stripes.
                let mut w = self.data.writer(codec);
                if !inline.is_empty() {
                    if let Err(e) = w.write(inline.freeze()).await {
                        w.abort().await;
                        return Err(error::data(e));
                    }
                }
                ObjectBody::Stripes {
                    codec,
                    stripes: w.finish().await.map_err(error::data)?,
                }
            }
        };
        Ok(Stored { body, digest })
    }

    /// Best-effort removal of a body that will not be committed.
    pub(crate) async fn discard(&self, body: &ObjectBody) {
        let stripes: Vec<_> = body.stripes().into_iter().cloned().collect();
        if !stripes.is_empty() {
            self.data.delete_stripes(&stripes).await;
        }
    }

    /// The bytes `range` of `body` as a response body with an exact length.
    pub(crate) fn read_body(&self, body: &ObjectBody, range: Range<u64>) -> StreamingBlob {
        let len = range.end.saturating_sub(range.start);
        StreamingBlob::new(BodyStream {
            inner: Mutex::new(self.data.read(body, range)),
            remaining: len,
        })
    }
}

/// A request body that failed while being read, as an S3 error. s3s's aws-chunked and
/// signed-payload decoders wrap a failure of the body beneath them (the client closed
/// the connection mid-upload, the size cap) as `Underlying`, which they map to `500
/// InternalError`; it is the client's error: map the wrapped error itself
/// (`IncompleteBody`, or `EntityTooLarge` for the size cap).
fn body_error(e: s3s::StdError) -> S3Error {
    use s3s::stream::aws_chunked_stream::AwsChunkedStreamError as Chunked;
    use s3s::stream::upload_stream::UploadStreamError as Signed;
    let e = match e.downcast::<Chunked>() {
        Ok(x) => match *x {
            Chunked::Underlying(inner) => inner,
            other => Box::new(other),
        },
        Err(e) => match e.downcast::<Signed>() {
            Ok(x) => match *x {
                Signed::Underlying(inner) => inner,
                other => Box::new(other),
            },
            Err(e) => e,
        },
    };
    error::body(e)
}

/// A data-plane read as an s3s byte stream of known length.
struct BodyStream {
    inner: Mutex<BoxStream<'static, Result<Bytes, DataError>>>,
    remaining: u64,
}

impl Stream for BodyStream {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let inner = match this.inner.get_mut() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        match inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(b))) => {
                this.remaining = this.remaining.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::warn!(error = %e, "object read failed mid-stream");
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl ByteStream for BodyStream {
    fn remaining_length(&self) -> RemainingLength {
        RemainingLength::new_exact(usize::try_from(self.remaining).unwrap_or(usize::MAX))
    }
}

/// The access check's findings (always present: the access check runs first).
pub(crate) fn ctx(ext: &Extensions) -> S3Result<RequestCtx> {
    ext.get::<RequestCtx>()
        .cloned()
        .ok_or_else(|| s3(S3ErrorCode::AccessDenied, "unauthenticated request"))
}

/// The bucket the request names (checked to exist and be the caller's).
pub(crate) fn bucket_of(ctx: &RequestCtx) -> S3Result<BucketRecord> {
    ctx.bucket.clone().ok_or_else(|| {
        s3(
            S3ErrorCode::NoSuchBucket,
            "The specified bucket does not exist",
        )
    })
}

pub(crate) fn timestamp(ms: u64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

fn timestamp_secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

pub(crate) fn etag(v: &str) -> ETag {
    ETag::Strong(v.to_owned())
}

/// The ETag value inside an `If-Match`-style condition, without quotes.
pub(crate) fn condition_etag(c: &ETagCondition) -> Option<String> {
    c.as_etag().map(|e| e.value().trim_matches('"').to_owned())
}

/// The entity tags of an `If-Match` / `If-None-Match` header: RFC 7232 §3.1/§3.2 allow a
/// comma-separated list (`"a", W/"b"`), which s3s reads as one quoted ETag whose value
/// holds the inner quotes and commas (`a", W/"b`). `None` for `*`. Tags are compared
/// by value (weak and strong alike, as S3 does); a comma inside a quoted tag stays.
pub(crate) fn condition_etags(c: &ETagCondition) -> Option<Vec<String>> {
    let e = c.as_etag()?;
    let header = match e {
        ETag::Strong(v) => format!("\"{v}\""),
        ETag::Weak(v) => format!("W/\"{v}\""),
    };
    Some(etag_list(&header))
}

/// The tags of an entity-tag list (`"a", W/"b", c`), quotes and `W/` removed.
pub(crate) fn etag_list(header: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            return out;
        }
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let (value, after) = match tag.strip_prefix('"') {
            Some(q) => match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            },
            None => match tag.find(',') {
                Some(end) => (tag[..end].trim_end(), &tag[end..]),
                None => (tag.trim_end(), ""),
            },
        };
        out.push(value.to_owned());
        rest = after;
    }
}

/// S3 answers a version id it could not have issued with `400 InvalidArgument`; ours
/// are `null` or 32 lowercase hex digits ([`Gateway::new_id`]).
pub(crate) fn check_version_id(v: &str) -> S3Result<()> {
    let ours = v == meta_raft::state_machine::NULL_VERSION_ID
        || (v.len() == 32 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    if ours {
        Ok(())
    } else {
        Err(s3(
            S3ErrorCode::InvalidArgument,
            "Invalid version id specified",
        ))
    }
}

/// `ms` since the Unix epoch as an HTTP date header value (`Last-Modified`).
pub(crate) fn http_date(ms: u64) -> Option<http::HeaderValue> {
    let mut buf = Vec::new();
    timestamp(ms)
        .format(s3s::dto::TimestampFormat::HttpDate, &mut buf)
        .ok()?;
    http::HeaderValue::from_bytes(&buf).ok()
}

/// The validator headers of a `304 Not Modified` (RFC 7232 §4.1: the ETag, and the
/// Cache-Control and Expires a 200 would carry) plus Last-Modified and the version id,
/// as S3 sends them.
pub(crate) fn not_modified_headers(v: &VersionRecord, version_id: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(x) = http::HeaderValue::from_str(&format!("\"{}\"", v.etag)) {
        h.insert(http::header::ETAG, x);
    }
    if let Some(x) = http_date(v.created_ms) {
        h.insert(http::header::LAST_MODIFIED, x);
    }
    let optional = [
        (http::header::CACHE_CONTROL, v.meta.cache_control.as_deref()),
        (http::header::EXPIRES, v.meta.expires.as_deref()),
        (
            http::HeaderName::from_static("x-amz-version-id"),
            version_id,
        ),
    ];
    for (name, value) in optional {
        if let Some(x) = value.and_then(|s| http::HeaderValue::from_str(s).ok()) {
            h.insert(name, x);
        }
    }
    h
}

/// `If-None-Match: *` / `If-Match: etag` on a write, as metadata preconditions.
pub(crate) fn write_preconditions(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Vec<Precondition>> {
    let mut out = Vec::new();
    if let Some(c) = if_none_match {
        if !c.is_any() {
            return Err(s3(
                S3ErrorCode::NotImplemented,
                "If-None-Match on a write supports only *",
            ));
        }
        out.push(Precondition::KeyAbsent);
    }
    if let Some(c) = if_match {
        match condition_etag(c) {
            Some(e) => out.push(Precondition::CurrentEtagEquals(e)),
            None => {
                return Err(s3(
                    S3ErrorCode::NotImplemented,
                    "If-Match: * on a write is not supported; name the ETag",
                ))
            }
        }
    }
    Ok(out)
}

/// Read conditions (GET/HEAD, and copy-source conditions): `Err(PreconditionFailed)`,
/// `Err(NotModified)` or `Ok`. An ETag condition may list several tags (any one
/// matches). RFC 9110 order: If-Match, else If-Unmodified-Since; then If-None-Match, else
/// If-Modified-Since.
pub(crate) fn check_read_conditions(
    v: &VersionRecord,
    if_match: Option<&ETagCondition>,
    if_unmodified_since: Option<&Timestamp>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    not_modified_code: S3ErrorCode,
) -> S3Result<()> {
    let matches = |c: &ETagCondition| match condition_etags(c) {
        None => true, // `*`
        Some(tags) => tags.contains(&v.etag),
    };
    let modified_s = i64::try_from(v.created_ms / 1000).unwrap_or(i64::MAX);
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(s3(
                S3ErrorCode::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            ));
        }
    } else if let Some(t) = if_unmodified_since {
        if modified_s > timestamp_secs(t) {
            return Err(s3(
                S3ErrorCode::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            ));
        }
    }
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(S3Error::new(not_modified_code));
        }
    } else if let Some(t) = if_modified_since {
        if modified_s <= timestamp_secs(t) {
            return Err(S3Error::new(not_modified_code));
        }
    }
    Ok(())
}

/// Stored headers from a request's header fields. `MetadataTooLarge` past 2 KiB of
/// user metadata. `Content-Encoding` is stored without `aws-chunked`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn object_meta(
    content_type: Option<String>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    expires: Option<String>,
    metadata: Option<s3s::dto::Metadata>,
) -> S3Result<ObjectMeta> {
    let user_metadata: BTreeMap<String, String> = metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let size: usize = user_metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > USER_METADATA_MAX_BYTES {
        return Err(s3(
            S3ErrorCode::MetadataTooLarge,
            format!("Your metadata headers exceed the maximum allowed metadata size ({size} > {USER_METADATA_MAX_BYTES} bytes)"),
        ));
    }
    Ok(ObjectMeta {
        content_type,
        cache_control,
        content_disposition,
        content_encoding: content_encoding.and_then(stored_content_encoding),
        content_language,
        expires,
        user_metadata,
    })
}

/// The `Content-Encoding` an object keeps: `aws-chunked` is the coding of the upload
/// (streaming SigV4, trailing checksums), already undone, so S3 drops it — `aws-chunked`
/// alone stores none, `aws-chunked,gzip` stores `gzip`. Other values are kept verbatim.
pub(crate) fn stored_content_encoding(v: String) -> Option<String> {
    let is_chunked = |t: &str| t.trim().eq_ignore_ascii_case("aws-chunked");
    if !v.split(',').any(is_chunked) {
        return Some(v);
    }
    let kept: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && !is_chunked(t))
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

pub(crate) fn user_metadata(meta: &ObjectMeta) -> Option<s3s::dto::Metadata> {
    if meta.user_metadata.is_empty() {
        return None;
    }
    Some(
        meta.user_metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// `x-amz-version-id` is returned only by buckets that have had versioning turned on.
pub(crate) fn visible_version_id(bucket: &BucketRecord, version_id: &str) -> Option<String> {
    (bucket.versioning != Versioning::Unversioned).then(|| version_id.to_owned())
}

/// The object's byte range of part `n` (1-based) of a multipart body; a non-multipart
/// body has exactly one part.
pub(crate) fn part_range(body: &ObjectBody, size: u64, n: i32) -> S3Result<(Range<u64>, usize)> {
    let bad = || {
        let mut e = s3(
            S3ErrorCode::Custom("InvalidPartNumber".into()),
            "The requested partnumber is not satisfiable",
        );
        e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
        e
    };
    let n = usize::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(bad)?;
    match body {
        ObjectBody::Multipart { parts, .. } => {
            let part = parts.get(n - 1).ok_or_else(bad)?;
            let start: u64 = parts[..n - 1].iter().map(|p| p.size).sum();
            Ok((start..start + part.size, parts.len()))
        }
        _ if n == 1 => Ok((0..size, 1)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
#[path = "gateway_test.rs"]
mod gateway_test;
