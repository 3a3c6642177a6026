#!/usr/bin/env python3
"""boto3 smoke test of a Shale S3 endpoint (run by scripts/s3-smoke.sh).

    s3-smoke.py ENDPOINT ACCESS_KEY SECRET_KEY

SHALE_SMOKE_CA_BUNDLE=FILE.pem: verify an https:// endpoint's certificate against FILE
(boto3 and the presigned-URL requests) instead of the system CAs.

put/get, head with metadata, ranged get, multipart through upload_file (20 MiB file,
5 MiB chunks), download_file, list_objects_v2 with a delimiter, presigned GET and PUT
URLs (signature v4), delete_objects, delete_bucket. Exits non-zero on any mismatch.
"""

import hashlib
import os
import random
import ssl
import sys
import tempfile
import urllib.error
import urllib.request

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

MIB = 1024 * 1024


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"  ok: {what}")


def error_code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def main():
    endpoint, access, secret = sys.argv[1:4]
    ca_bundle = os.environ.get("SHALE_SMOKE_CA_BUNDLE") or None
    # urllib (presigned URLs) and boto3 both verify the server against the bundle.
    tls = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None

    def urlopen(req):
        return urllib.request.urlopen(req, timeout=60, context=tls)

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        verify=ca_bundle,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )
    bucket = f"smoke-boto3-{os.getpid()}-{random.randrange(1 << 30)}"
    s3.create_bucket(Bucket=bucket)
    check(
        any(b["Name"] == bucket for b in s3.list_buckets()["Buckets"]),
        "create_bucket + list_buckets",
    )

    body = os.urandom(100_000)
    r = s3.put_object(
        Bucket=bucket,
        Key="docs/a.bin",
        Body=body,
        ContentType="application/x-smoke",
        Metadata={"color": "green"},
    )
    check(r["ETag"] == f'"{hashlib.md5(body).hexdigest()}"', "put_object ETag is the md5")
    g = s3.get_object(Bucket=bucket, Key="docs/a.bin")
    check(g["Body"].read() == body, "get_object bytes")
    h = s3.head_object(Bucket=bucket, Key="docs/a.bin")
    check(h["ContentLength"] == len(body), "head_object length")
    check(h["ContentType"] == "application/x-smoke", "head_object content type")
    check(h["Metadata"].get("color") == "green", "head_object metadata")
    rg = s3.get_object(Bucket=bucket, Key="docs/a.bin", Range="bytes=10-19")
    check(rg["Body"].read() == body[10:20], "ranged get_object")
    check(
        error_code(lambda: s3.get_object(Bucket=bucket, Key="docs/missing")) == "NoSuchKey",
        "NoSuchKey",
    )

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "big.bin")
        back = os.path.join(tmp, "big.back")
        big = os.urandom(20 * MIB + 3)
        with open(src, "wb") as f:
            f.write(big)
        cfg = TransferConfig(
            multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4
        )
        s3.upload_file(src, bucket, "big/big.bin", Config=cfg)
        h = s3.head_object(Bucket=bucket, Key="big/big.bin")
        check(h["ContentLength"] == len(big), "multipart object length")
        check(h["ETag"].endswith('-5"'), f"multipart ETag has 5 parts ({h['ETag']})")
        s3.download_file(bucket, "big/big.bin", back, Config=cfg)
        with open(back, "rb") as f:
            check(f.read() == big, "download_file bytes (ranged parallel GETs)")

    for k in ["list/x/1", "list/x/2", "list/y", "list/z/3"]:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    lst = s3.list_objects_v2(Bucket=bucket, Prefix="list/", Delimiter="/")
    check([c["Key"] for c in lst.get("Contents", [])] == ["list/y"], "list keys")
    check(
        [p["Prefix"] for p in lst.get("CommonPrefixes", [])] == ["list/x/", "list/z/"],
        "list common prefixes",
    )
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    )
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    check(keys == sorted(keys) and len(keys) == 6, f"paginated listing ({keys})")

    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "docs/a.bin"}, ExpiresIn=600
    )
    check("X-Amz-Signature=" in url, "presigned URL is SigV4")
    with urlopen(url) as resp:
        check(resp.status == 200 and resp.read() == body, "presigned GET")
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "docs/presigned"}, ExpiresIn=600
    )
    req = urllib.request.Request(put_url, data=b"via presigned PUT", method="PUT")
    with urlopen(req) as resp:
        check(resp.status == 200, "presigned PUT")
    got = s3.get_object(Bucket=bucket, Key="docs/presigned")["Body"].read()
    check(got == b"via presigned PUT", "presigned PUT stored the bytes")
    # Flip one hex digit of the signature (same length, wrong value).
    at = url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    bad = url[:at] + ("1" if url[at] == "0" else "0") + url[at + 1:]
    try:
        urlopen(bad)
        check(False, "tampered presigned URL refused")
    except urllib.error.HTTPError as e:
        check(e.code == 403, f"tampered presigned URL refused ({e.code})")

    all_keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in p.get("Contents", [])]
    r = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in all_keys]}
    )
    check(len(r.get("Deleted", [])) == len(all_keys) and not r.get("Errors"), "delete_objects")
    check(s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0, "bucket empty")
    s3.delete_bucket(Bucket=bucket)
    check(
        error_code(lambda: s3.head_bucket(Bucket=bucket)) in ("404", "NoSuchBucket"),
        "bucket deleted",
    )
    print("boto3 smoke test passed")


if __name__ == "__main__":
    main()
