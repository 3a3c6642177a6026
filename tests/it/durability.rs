//! `shale durability` as a process: the text report for 8+4 (with and without rack
//! losses), Backblaze's 4+2 worked example, the JSON report, and flag errors that name
//! the flag and exit non-zero.

use std::process::Output;

fn durability(args: &[&str]) -> Output {
    std::process::Command::new(tests::shale_bin())
        .arg("durability")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .expect("running shale durability")
}

fn ok(args: &[&str]) -> String {
    let out = durability(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "shale durability {args:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fails(args: &[&str]) -> String {
    let out = durability(args);
    assert!(
        !out.status.success(),
        "shale durability {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const EIGHT_FOUR: [&str; 8] = ["--k", "8", "--m", "4", "--afr", "2%", "--repair", "24h"];

#[test]
fn durability_reports_nines_for_eight_plus_four() {
    let out = ok(&EIGHT_FOUR);
    assert!(out.contains("model:       markov"), "{out}");
    assert!(out.contains("8+4 (12 fragments"), "{out}");
    assert!(out.contains("loss/year:   7.135e-16"), "{out}");
    assert!(out.contains("durability:  15.1 nines"), "{out}");
    for (repair, nines) in [("6h", "17.6"), ("72h", "13.2")] {
        let out = ok(&["--k", "8", "--m", "4", "--afr", "0.02", "--repair", repair]);
        assert!(
            out.contains(&format!("durability:  {nines} nines")),
            "{out}"
        );
    }
    let racks = [
        &EIGHT_FOUR[..],
        &["--fragments-per-rack", "2", "--rack-afr", "1%"],
    ]
    .concat();
    let out = ok(&racks);
    assert!(out.contains("2 fragments per rack (6 racks)"), "{out}");
    assert!(out.contains("durability:  8.2 nines"), "{out}");
    let slow = [&racks[..], &["--rack-repair", "3d"]].concat();
    assert!(ok(&slow).contains("durability:  7.5 nines"));
}

#[test]
fn durability_reproduces_backblaze_worked_example() {
    let out = ok(&[
        "--k",
        "4",
        "--m",
        "2",
        "--afr",
        "10%",
        "--repair",
        "1d",
        "--model",
        "backblaze-periods",
    ]);
    assert!(out.contains("model:       backblaze-periods"), "{out}");
    assert!(out.contains("loss/period: 4.109e-10"), "{out}");
    assert!(out.contains("loss/year:   1.500e-7"), "{out}");
    assert!(out.contains("durability:  6.8 nines"), "{out}");
}

#[test]
fn durability_json_is_one_object() {
    let out = ok(&[&EIGHT_FOUR[..], &["--json"]].concat());
    let line = out.trim();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        line.starts_with("{\"model\":\"markov\",\"k\":8,\"m\":4,"),
        "{line}"
    );
    assert!(line.contains("\"annual_loss\":7.13"), "{line}");
    assert!(line.contains("\"nines\":15.14"), "{line}");
    assert!(line.ends_with('}'), "{line}");
}

#[test]
fn durability_bad_arguments_name_the_flag() {
    let err = fails(&["--k", "8", "--m", "4", "--afr", "2", "--repair", "24h"]);
    assert!(err.contains("--afr"), "{err}");
    assert!(err.contains("write 2%"), "{err}");
    let err = fails(&["--k", "8", "--m", "4", "--afr", "2%", "--repair", "24"]);
    assert!(err.contains("--repair") && err.contains("24h"), "{err}");
    let err = fails(&["--k", "0", "--m", "4", "--afr", "2%", "--repair", "24h"]);
    assert!(err.contains("--k"), "{err}");
    let err = fails(&[&EIGHT_FOUR[..], &["--fragments-per-rack", "2"]].concat());
    assert!(err.contains("--rack-afr"), "{err}");
    let err = fails(
        &[
            &EIGHT_FOUR[..],
            &["--fragments-per-rack", "13", "--rack-afr", "1%"],
        ]
        .concat(),
    );
    assert!(
        err.contains("--fragments-per-rack") && err.contains("1..=12"),
        "{err}"
    );
    let err = fails(&["--k", "200", "--m", "100", "--afr", "2%", "--repair", "24h"]);
    assert!(err.contains("k+m = 300 exceeds 255"), "{err}");
}
