//! Integrity of uploaded bytes: the MD5 (ETag and `Content-MD5`) and the S3 additional
//! checksums (`x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}`), computed in one pass
//! while the body streams, and compared with what the client declared — in a header, or
//! in an aws-chunked trailer that only exists once the body has ended. Nothing is
//! committed before this check passes.

use std::collections::BTreeMap;

use base64::Engine as _;
use http::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::{S3Error, S3ErrorCode};

use crate::error::s3;

/// The additional checksum algorithms Shale verifies and stores, by S3 name.
pub const ALGORITHMS: [&str; 5] = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"];

/// What the client declared about the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Declared {
    /// `Content-MD5`, decoded (16 bytes).
    pub content_md5: Option<[u8; 16]>,
    /// `x-amz-checksum-<alg>` header values (base64), by algorithm.
    pub checksums: BTreeMap<&'static str, String>,
    /// Algorithms to compute: declared ones, `x-amz-sdk-checksum-algorithm` /
    /// `x-amz-checksum-algorithm`, and the one named by `x-amz-trailer`.
    pub compute: Vec<&'static str>,
    /// Algorithms whose checksum `x-amz-trailer` announces as a trailer.
    pub trailer: Vec<&'static str>,
}

fn algorithm(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    ALGORITHMS.into_iter().find(|a| *a == lower)
}

impl Declared {
    /// Reads the declarations from the request headers. `InvalidDigest` for a malformed
    /// `Content-MD5`; `InvalidRequest` for an unsupported checksum algorithm.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, S3Error> {
        let mut d = Declared::default();
        if let Some(v) = headers.get("content-md5") {
            let raw = v
                .to_str()
                .ok()
                .and_then(|s| {
                    base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .ok()
                })
                .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
                .ok_or_else(|| {
                    s3(
                        S3ErrorCode::InvalidDigest,
                        "Content-MD5 is not base64 of 16 bytes",
                    )
                })?;
            d.content_md5 = Some(raw);
        }
        for alg in ALGORITHMS {
            if let Some(v) = headers.get(format!("x-amz-checksum-{alg}").as_str()) {
                let v = v
                    .to_str()
                    .map_err(|_| s3(S3ErrorCode::InvalidRequest, "checksum header is not ASCII"))?;
                d.checksums.insert(alg, v.trim().to_owned());
                d.compute.push(alg);
            }
        }
        for h in ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"] {
            if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
                let alg = algorithm(v).ok_or_else(|| {
                    s3(
                        S3ErrorCode::InvalidRequest,
                        format!("unsupported checksum algorithm {v:?}"),
                    )
                })?;
                d.compute.push(alg);
            }
        }
        if let Some(v) = headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
            for name in v.split(',') {
                if let Some(alg) = name.trim().strip_prefix("x-amz-checksum-") {
                    let alg = algorithm(alg).ok_or_else(|| {
                        s3(
                            S3ErrorCode::InvalidRequest,
                            format!("unsupported trailing checksum {name:?}"),
                        )
                    })?;
                    d.compute.push(alg);
                    d.trailer.push(alg);
                }
            }
        }
        d.compute.sort_unstable();
        d.compute.dedup();
        Ok(d)
    }
}

/// MD5 and the requested checksums of a body, computed as it streams.
pub struct BodyDigest {
    md5: Md5,
    hasher: ChecksumHasher,
    size: u64,
}

/// The result of hashing a whole body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    pub size: u64,
    pub md5: [u8; 16],
    /// Algorithm → base64 value, for every computed algorithm.
    pub checksums: BTreeMap<String, String>,
}

impl Digest {
    /// The ETag of a single PUT: lowercase hex MD5.
    pub fn etag(&self) -> String {
        hex::encode(self.md5)
    }
}

impl BodyDigest {
    pub fn new(algorithms: &[&'static str]) -> Self {
        let mut hasher = ChecksumHasher::default();
        for a in algorithms {
            match *a {
                "crc32" => hasher.crc32 = Some(Crc32::new()),
                "crc32c" => hasher.crc32c = Some(Crc32c::new()),
                "crc64nvme" => hasher.crc64nvme = Some(Crc64Nvme::new()),
                "sha1" => hasher.sha1 = Some(Sha1::new()),
                "sha256" => hasher.sha256 = Some(Sha256::new()),
                _ => {}
            }
        }
        BodyDigest {
            md5: Md5::new(),
            hasher,
            size: 0,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.hasher.update(data);
        self.size += data.len() as u64;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(self) -> Digest {
        let sums = self.hasher.finalize();
        let mut checksums = BTreeMap::new();
        for (name, v) in [
            ("crc32", sums.checksum_crc32),
            ("crc32c", sums.checksum_crc32c),
            ("crc64nvme", sums.checksum_crc64nvme),
            ("sha1", sums.checksum_sha1),
            ("sha256", sums.checksum_sha256),
        ] {
            if let Some(v) = v {
                checksums.insert(name.to_owned(), v);
            }
        }
        Digest {
            size: self.size,
            md5: self.md5.finalize(),
            checksums,
        }
    }
}

/// The trailers of an aws-chunked body against `x-amz-trailer`: every announced checksum
/// arrived, and no checksum arrived unannounced — else `400 MalformedTrailerError`, as
/// S3 answers. (A dropped trailer would otherwise leave an unsigned upload unverified.)
pub fn check_trailer(declared: &Declared, trailers: Option<&HeaderMap>) -> Result<(), S3Error> {
    for alg in ALGORITHMS {
        let announced = declared.trailer.contains(&alg);
        let arrived =
            trailers.is_some_and(|t| t.contains_key(format!("x-amz-checksum-{alg}").as_str()));
        if announced != arrived {
            let mut e = s3(
                S3ErrorCode::Custom("MalformedTrailerError".into()),
                format!(
                    "The request contained trailing data that was not well-formed or did not \
                     conform to our published schema (x-amz-checksum-{alg} {}).",
                    if announced {
                        "announced in x-amz-trailer but missing"
                    } else {
                        "not announced in x-amz-trailer"
                    }
                ),
            );
            e.set_status_code(http::StatusCode::BAD_REQUEST);
            return Err(e);
        }
    }
    Ok(())
}

/// Compares what was declared (headers, and trailers once the body ended) with what was
/// computed. `BadDigest` on any mismatch.
pub fn verify(
    declared: &Declared,
    trailers: Option<&HeaderMap>,
    got: &Digest,
) -> Result<(), S3Error> {
    if let Some(md5) = declared.content_md5 {
        if md5 != got.md5 {
            return Err(s3(
                S3ErrorCode::BadDigest,
                "the Content-MD5 you specified did not match what we received",
            ));
        }
    }
    let check = |alg: &str, value: &str| -> Result<(), S3Error> {
        match got.checksums.get(alg) {
            Some(ours) if ours == value => Ok(()),
            Some(_) => Err(s3(
                S3ErrorCode::BadDigest,
                format!("the {alg} checksum you specified did not match what we received"),
            )),
            None => Err(s3(
                S3ErrorCode::InvalidRequest,
                format!("trailing checksum {alg} was not announced in x-amz-trailer"),
            )),
        }
    };
    for (alg, value) in &declared.checksums {
        check(alg, value)?;
    }
    if let Some(t) = trailers {
        for alg in ALGORITHMS {
            if let Some(v) = t.get(format!("x-amz-checksum-{alg}").as_str()) {
                let v = v
                    .to_str()
                    .map_err(|_| s3(S3ErrorCode::InvalidRequest, "trailer is not ASCII"))?;
                check(alg, v.trim())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "checksum_test.rs"]
mod checksum_test;
