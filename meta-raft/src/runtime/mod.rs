//! openraft `AsyncRuntime` over `common::env` (in progress).
