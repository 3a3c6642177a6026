//! Helpers for the real-process integration tests in `it/`.
