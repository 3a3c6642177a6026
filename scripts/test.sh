#!/usr/bin/env bash
# The test command (README.md): format, lints and tests, in both worlds —
# the normal build (tokio) and the simulated build (RUSTFLAGS="--cfg madsim", its own
# target directory). Fails on the first problem.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (normal build)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (normal build)"
cargo test --workspace --locked

step "clippy (madsim build)"
RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target-madsim \
  cargo clippy --workspace --all-targets --locked -- -D warnings

# Doctests are skipped here: rustdoc does not see RUSTFLAGS, so it would compile the
# examples without cfg(madsim) against libraries built with it.
step "tests (madsim build)"
RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target-madsim \
  cargo test --workspace --locked --lib --bins --tests

step "all green"
