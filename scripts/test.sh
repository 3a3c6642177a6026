#!/usr/bin/env bash
# The test command (README.md): format, lints and tests, in both worlds —
# the normal build (tokio) and the simulated build (RUSTFLAGS="--cfg madsim", its own
# target directory). Fails on the first problem.
set -euo pipefail
cd "$(dirname "$0")/.."

# s3s 0.17 (the gateway's S3 protocol layer) declares rust-version 1.96 but builds and
# passes on 1.95, this machine's toolchain; every build passes --ignore-rust-version
# (docs/s3s-evaluation.md). Harmless on newer toolchains.
IRV=--ignore-rust-version

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (normal build)"
cargo clippy --workspace --all-targets --locked $IRV -- -D warnings

step "tests (normal build)"
cargo test --workspace --locked $IRV

step "clippy (madsim build)"
RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target-madsim \
  cargo clippy --workspace --all-targets --locked $IRV -- -D warnings

# Doctests are skipped here: rustdoc does not see RUSTFLAGS, so it would compile the
# examples without cfg(madsim) against libraries built with it.
step "tests (madsim build)"
RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target-madsim \
  cargo test --workspace --locked $IRV --lib --bins --tests

# The simulated metadata-plane and S3 scenarios under several seeds (each seed replays exactly;
# a failure names the seed: MADSIM_TEST_SEED=N cargo test -p sim --test meta).
step "simulation seeds (madsim build)"
sim_seeds() { # TEST FIRST LAST
  local test=$1 seed
  for seed in $(seq "$2" "$3"); do
    if ! MADSIM_TEST_SEED=$seed RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target-madsim \
        cargo test -q --locked $IRV -p sim --test "$test" >/tmp/shale-sim-seed.log 2>&1; then
      cat /tmp/shale-sim-seed.log
      echo "simulation failed; replay: MADSIM_TEST_SEED=$seed RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target-madsim cargo test $IRV -p sim --test $test"
      exit 1
    fi
    echo "sim $test seed $seed ok"
  done
}
sim_seeds meta 1 12
sim_seeds gateway 1 6

step "all green"
