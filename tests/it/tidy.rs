//! House rules that the compiler and clippy do not check (TigerBeetle's `tidy`):
//! - the madsim cfg appears only in `common/src/env/` and `sim/` (and `tests/`, which
//!   opts whole real-process suites out of the simulated build);
//! - every crate starts with a `//!` doc;
//! - ARCHITECTURE.md names every crate;
//! - no ignored tests, and no todo/unimplemented macros in shipped code;
//! - every `select!` in shipped code is `biased;` (tokio's unbiased select draws its
//!   branch order from an unseeded thread-local RNG, so the same simulation seed would
//!   not give the same run: the gateway's accept loop did, found by `same_seed_same_trace`).
//!
//! The patterns are assembled at run time so this file does not match itself.

use std::path::{Path, PathBuf};

const CRATES: [&str; 10] = [
    "common",
    "proto",
    "placement",
    "meta-raft",
    "maintain",
    "datanode",
    "gateway",
    "shale",
    "sim",
    "tests",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            if name != "target" && name != "target-madsim" && !name.starts_with('.') {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

fn all_sources() -> Vec<(String, String)> {
    let root = tests::workspace_root();
    let mut files = Vec::new();
    for c in CRATES {
        rust_files(&root.join(c), &mut files);
    }
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn cfg_madsim_only_in_env_and_sim() {
    let needle = ["cfg(", "madsim)"].concat();
    let negated = ["cfg(not(", "madsim))"].concat();
    let mut bad = Vec::new();
    for (path, text) in all_sources() {
        let allowed = path.starts_with("common/src/env/") || path.starts_with("sim/");
        let test_opt_out =
            path.starts_with("tests/") && !text.replace(&negated, "").contains(&needle);
        if !allowed && !test_opt_out && text.contains(&needle) {
            bad.push(path);
        }
    }
    assert!(
        bad.is_empty(),
        "the madsim cfg outside common::env and sim/: {bad:?}"
    );
}

#[test]
fn every_crate_has_a_doc_and_is_in_architecture_md() {
    let root = tests::workspace_root();
    let arch = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    for c in CRATES {
        let entry = ["src/lib.rs", "src/main.rs", "lib.rs"]
            .iter()
            .map(|f| root.join(c).join(f))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("crate {c} has no lib.rs or main.rs"));
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(
            text.trim_start().starts_with("//!"),
            "{} does not start with a //! doc",
            entry.display()
        );
        assert!(
            arch.contains(&format!("`{c}/`")),
            "ARCHITECTURE.md does not name `{c}/`"
        );
    }
}

#[test]
fn no_ignored_tests_and_no_stubs_in_shipped_code() {
    let ignore = ["#[", "ignore"].concat();
    let stubs = [["todo", "!("].concat(), ["unimplemented", "!("].concat()];
    let mut bad = Vec::new();
    for (path, text) in all_sources() {
        if text.contains(&ignore) {
            bad.push(format!("{path}: ignored test"));
        }
        let is_test =
            path.starts_with("tests/") || path.ends_with("_test.rs") || path.contains("/tests/");
        if !is_test && stubs.iter().any(|s| text.contains(s.as_str())) {
            bad.push(format!("{path}: stub macro"));
        }
    }
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn every_select_in_shipped_code_is_biased() {
    let select = ["select", "! {"].concat();
    let mut bad = Vec::new();
    for (path, text) in all_sources() {
        let is_test =
            path.starts_with("tests/") || path.ends_with("_test.rs") || path.contains("/tests/");
        if is_test {
            continue;
        }
        for (at, _) in text.match_indices(select.as_str()) {
            let rest = text[at + select.len()..].trim_start();
            if !rest.starts_with("biased;") {
                let line = text[..at].lines().count();
                bad.push(format!("{path}:{line}: select! without `biased;`"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}
