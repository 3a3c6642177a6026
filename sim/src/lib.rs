//! Shale's deterministic simulation harness. Built only with `--cfg madsim`.
