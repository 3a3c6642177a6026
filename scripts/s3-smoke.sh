#!/usr/bin/env bash
# Smoke test of a running Shale S3 endpoint with the real aws CLI and boto3.
#
#   scripts/s3-smoke.sh ENDPOINT ACCESS_KEY SECRET_KEY
#   e.g. scripts/s3-smoke.sh http://127.0.0.1:9000 SHALE... secret...
#
# For an https:// endpoint with a certificate no system CA vouches for (a self-signed
# one), set SHALE_SMOKE_CA_BUNDLE=FILE.pem: the aws CLI gets --ca-bundle, boto3 and the
# presigned-URL requests verify against it.
#
# Installs pinned awscli + boto3 from PyPI into a venv under target/s3-smoke-venv (once;
# reused afterwards; override with SHALE_SMOKE_VENV), then: aws s3 mb / cp / ls / cp
# --recursive / rm, and scripts/s3-smoke.py (boto3: put/get, multipart upload_file of a
# 20 MiB file with 5 MiB parts, download_file, listing, presigned s3v4 URLs, delete).
# Exits non-zero on any failure or mismatch.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 ENDPOINT ACCESS_KEY SECRET_KEY" >&2
  exit 2
fi
ENDPOINT=$1
export AWS_ACCESS_KEY_ID=$2
export AWS_SECRET_ACCESS_KEY=$3
export AWS_DEFAULT_REGION=us-east-1
# Never read the user's ~/.aws config or credentials.
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL || true

ROOT=$(cd "$(dirname "$0")/.." && pwd)
AWSCLI_VERSION=1.46.3
BOTO3_VERSION=1.44.5
VENV=${SHALE_SMOKE_VENV:-$ROOT/target/s3-smoke-venv}
STAMP="$VENV/.installed-awscli-$AWSCLI_VERSION-boto3-$BOTO3_VERSION"

# A usable venv: installed by this script at these versions, and still runnable (a venv
# copied or moved from another folder keeps shebangs that point at the old one).
venv_ok() {
  [ -f "$STAMP" ] && "$VENV/bin/aws" --version >/dev/null 2>&1 \
    && "$VENV/bin/python" -c 'import boto3' >/dev/null 2>&1
}
# Concurrent runs (the plain and the TLS test) install one at a time.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
if command -v flock >/dev/null; then flock 9; fi
if ! venv_ok; then
  echo "==> installing awscli==$AWSCLI_VERSION boto3==$BOTO3_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      "awscli==$AWSCLI_VERSION" "boto3==$BOTO3_VERSION"; then
    echo "FAILED: pip could not install awscli/boto3 from PyPI (is PyPI reachable?)" >&2
    exit 3
  fi
  touch "$STAMP"
fi
exec 9>&-
PY="$VENV/bin/python"
AWS=("$VENV/bin/aws" --endpoint-url "$ENDPOINT")
if [ -n "${SHALE_SMOKE_CA_BUNDLE:-}" ]; then
  [ -r "$SHALE_SMOKE_CA_BUNDLE" ] || { echo "SHALE_SMOKE_CA_BUNDLE=$SHALE_SMOKE_CA_BUNDLE is not readable" >&2; exit 2; }
  AWS+=(--ca-bundle "$SHALE_SMOKE_CA_BUNDLE")
  export SHALE_SMOKE_CA_BUNDLE
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/shale-s3-smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
BUCKET="smoke-cli-$$-$RANDOM"

fail() { echo "FAILED: $*" >&2; exit 1; }
step() { echo "==> $*"; }

step "aws s3 mb s3://$BUCKET"
"${AWS[@]}" s3 mb "s3://$BUCKET"

step "aws s3 cp (small file, and a 12 MiB file: multipart at the CLI's 8 MiB threshold)"
printf 'hello from the aws CLI\n' >"$WORK/small.txt"
"$PY" -c "import os,sys; open(sys.argv[1],'wb').write(os.urandom(12*1024*1024+5))" "$WORK/big.bin"
"${AWS[@]}" s3 cp "$WORK/small.txt" "s3://$BUCKET/dir/small.txt"
"${AWS[@]}" s3 cp "$WORK/big.bin" "s3://$BUCKET/dir/big.bin"

step "aws s3 ls"
LS=$("${AWS[@]}" s3 ls "s3://$BUCKET/dir/")
echo "$LS"
# Captured, then searched: `aws ... | grep -q` under pipefail fails at random when grep
# exits at the first match and the CLI gets EPIPE writing the rest ([Errno 32]).
grep -q "small.txt" <<<"$LS" || fail "small.txt not listed"
grep -q "big.bin" <<<"$LS" || fail "big.bin not listed"
BUCKETS=$("${AWS[@]}" s3 ls)
grep -q "$BUCKET" <<<"$BUCKETS" || fail "bucket not in aws s3 ls: $BUCKETS"

step "aws s3 cp back, byte-exact"
"${AWS[@]}" s3 cp "s3://$BUCKET/dir/small.txt" "$WORK/small.back"
"${AWS[@]}" s3 cp "s3://$BUCKET/dir/big.bin" "$WORK/big.back"
cmp "$WORK/small.txt" "$WORK/small.back" || fail "small.txt differs"
cmp "$WORK/big.bin" "$WORK/big.back" || fail "big.bin differs"

step "aws s3 cp --recursive (up and down)"
mkdir -p "$WORK/tree/a/b" "$WORK/down"
for f in one a/two a/b/three "a/b/with space"; do printf '%s\n' "$f" >"$WORK/tree/$f"; done
"${AWS[@]}" s3 cp --recursive "$WORK/tree" "s3://$BUCKET/tree"
"${AWS[@]}" s3 cp --recursive "s3://$BUCKET/tree" "$WORK/down"
diff -r "$WORK/tree" "$WORK/down" || fail "recursive copy differs"

step "aws s3api head-object"
"${AWS[@]}" s3api head-object --bucket "$BUCKET" --key dir/small.txt >"$WORK/head.json"
grep -q '"ContentLength": 23' "$WORK/head.json" || fail "head-object: $(cat "$WORK/head.json")"

step "aws s3 rm (one, then --recursive), rb"
"${AWS[@]}" s3 rm "s3://$BUCKET/dir/small.txt"
if "${AWS[@]}" s3api head-object --bucket "$BUCKET" --key dir/small.txt >/dev/null 2>&1; then
  fail "small.txt still there after rm"
fi
"${AWS[@]}" s3 rm --recursive "s3://$BUCKET/"
[ -z "$("${AWS[@]}" s3 ls "s3://$BUCKET/" --recursive)" ] || fail "bucket not empty after rm --recursive"
"${AWS[@]}" s3 rb "s3://$BUCKET"

step "boto3 (scripts/s3-smoke.py)"
"$PY" "$ROOT/scripts/s3-smoke.py" "$ENDPOINT" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"

echo "S3 smoke test passed: aws CLI $AWSCLI_VERSION, boto3 $BOTO3_VERSION against $ENDPOINT${SHALE_SMOKE_CA_BUNDLE:+ (CA bundle $SHALE_SMOKE_CA_BUNDLE)}"
