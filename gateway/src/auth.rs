//! Who is asking, and may they: access keys from the root group (cached briefly), the
//! clock-skew check on this node's clock, and bucket ownership.
//!
//! s3s verifies SigV4 (header, presigned, aws-chunked) with the secret that
//! [`KeyStore`] returns. [`Access::check`] then runs before any body byte is read:
//! anonymous requests are refused, a request dated outside `max_clock_skew` of *this
//! node's* clock (`common::env::Clock`, which simulation skews per node) is
//! `RequestTimeTooSkewed`, and a request naming a bucket must come from the bucket's
//! owner. The bucket record found there travels to the handler in [`RequestCtx`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::env::{Clock, Instant};
use meta_raft::client::MetaClient;
use meta_raft::state_machine::{AccessKey, BucketRecord};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3ErrorCode, S3Result};

use crate::error::{meta, s3};
use crate::range_route::Forwarded;

/// How long a looked-up key is trusted before it is read again (deleted keys stop
/// working within this time).
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

/// Access keys, looked up in the root group through a read barrier and cached.
pub struct KeyStore {
    meta: MetaClient,
    clock: Clock,
    cache: Mutex<BTreeMap<String, (AccessKey, Instant)>>,
}

impl KeyStore {
    pub fn new(meta: MetaClient, clock: Clock) -> Self {
        KeyStore {
            meta,
            clock,
            cache: Mutex::new(BTreeMap::new()),
        }
    }

    /// The key `id`, or `InvalidAccessKeyId`.
    pub async fn lookup(&self, id: &str) -> S3Result<AccessKey> {
        let now = self.clock.now();
        if let Ok(cache) = self.cache.lock() {
            if let Some((key, at)) = cache.get(id) {
                if now.saturating_duration_since(*at) < KEY_CACHE_TTL {
                    return Ok(key.clone());
                }
            }
        }
        match self.meta.get_access_key(id).await.map_err(meta)? {
            Some(key) => {
                if let Ok(mut cache) = self.cache.lock() {
                    if cache.len() > 10_000 {
                        cache.clear();
                    }
                    cache.insert(id.to_owned(), (key.clone(), now));
                }
                Ok(key)
            }
            None => Err(s3(
                S3ErrorCode::InvalidAccessKeyId,
                "The AWS access key Id you provided does not exist in our records.",
            )),
        }
    }
}

/// s3s's view of the key store.
pub struct KeyAuth(pub Arc<KeyStore>);

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        Ok(SecretKey::from(self.0.lookup(access_key).await?.secret))
    }
}

/// What the access check learned, for the handler (`S3Request::extensions`).
#[derive(Clone, Debug)]
pub struct RequestCtx {
    /// The user the access key belongs to (bucket owner name).
    pub user: String,
    pub access_key: String,
    /// The bucket the request names, if it exists (absent for CreateBucket).
    pub bucket: Option<BucketRecord>,
}

/// The access policy: authenticated, fresh, and the bucket's owner.
pub struct Access {
    pub keys: Arc<KeyStore>,
    pub meta: MetaClient,
    pub clock: Clock,
    pub max_skew: Duration,
    /// Accept an unsigned request carrying a [`Forwarded`] access key: only for the
    /// service behind `range_route::IgnoreInvalidRange`, which verified the signature.
    pub trust_forwarded: bool,
}

/// Seconds since the Unix epoch of an ISO 8601 basic timestamp (`20261122T073819Z`).
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// The ISO 8601 basic timestamp (`20261122T073819Z`) of `secs` since the Unix epoch.
pub fn format_amz_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
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

impl Access {
    fn check_skew(&self, cx: &S3AccessContext<'_>) -> S3Result<()> {
        // Presigned URLs carry their date in the query and are bounded by their expiry,
        // which s3s checks; header-signed requests carry x-amz-date.
        let Some(date) = cx.headers().get("x-amz-date").and_then(|v| v.to_str().ok()) else {
            return Ok(());
        };
        let Some(signed) = parse_amz_date(date) else {
            return Err(s3(
                S3ErrorCode::AccessDenied,
                "x-amz-date is not an ISO 8601 basic timestamp",
            ));
        };
        let now = i64::try_from(self.clock.unix_ms() / 1000).unwrap_or(i64::MAX);
        let skew = signed.abs_diff(now);
        if skew > self.max_skew.as_secs() {
            return Err(s3(
                S3ErrorCode::RequestTimeTooSkewed,
                format!(
                    "The difference between the request time and the server's time is too large ({skew} s)."
                ),
            ));
        }
        Ok(())
    }
}

fn anonymous() -> s3s::S3Error {
    s3(S3ErrorCode::AccessDenied, "anonymous access is not allowed")
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let signed = cx.credentials().map(|c| c.access_key.clone());
        let access_key = match signed {
            Some(k) => k,
            None if self.trust_forwarded => cx
                .extensions_mut()
                .get::<Forwarded>()
                .map(|f| f.access_key.clone())
                .ok_or_else(anonymous)?,
            None => return Err(anonymous()),
        };
        self.check_skew(cx)?;
        let key = self.keys.lookup(&access_key).await?;
        let op = cx.s3_op().name().to_owned();
        let bucket = match cx.s3_path().get_bucket_name() {
            Some(name) if op != "CreateBucket" => {
                let record = match self.meta.get_bucket(name).await {
                    Ok(r) => r,
                    Err(meta_raft::client::MetaClientError::Rejected(
                        meta_raft::state_machine::Reason::NoSuchBucket,
                    )) => {
                        return Err(s3(
                            S3ErrorCode::NoSuchBucket,
                            "The specified bucket does not exist",
                        ))
                    }
                    Err(e) => return Err(meta(e)),
                };
                if record.owner != key.user {
                    return Err(s3(S3ErrorCode::AccessDenied, "Access Denied"));
                }
                Some(record)
            }
            _ => None,
        };
        cx.extensions_mut().insert(RequestCtx {
            user: key.user,
            access_key,
            bucket,
        });
        Ok(())
    }
}

#[cfg(test)]
#[path = "auth_test.rs"]
mod auth_test;
