//! `shale bench` (the load generator) run as a process against a real `shale dev`: a
//! mixed workload with overwrites, deletes and listings, every GET verified by the tool;
//! its JSON report is parsed here and the objects it wrote are checked with aws-sdk-s3.

use crate::s3::{client, unique};

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":");
    let start = line
        .find(&key)
        .unwrap_or_else(|| panic!("{name} missing in {line}"))
        + key.len();
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    &rest[..end]
}

#[tokio::test]
async fn shale_bench_mixed_workload_verifies_every_answer() {
    let (c, s3) = client().await;
    let bucket = unique("bench");
    // Blocking is fine: the cluster is another process and nothing else runs on this
    // test's runtime.
    let out = std::process::Command::new(tests::shale_bin())
        .args([
            "bench",
            "--endpoint",
            &c.endpoint,
            "--bucket",
            &bucket,
            "--workload",
            "mixed",
            "--size",
            "1KiB:3,300KiB:1",
            "--concurrency",
            "4",
            "--count",
            "120",
            "--keys",
            "24",
            "--prefixes",
            "3",
            "--mix",
            "get=5,put=3,delete=1,list=1",
            "--seed",
            "11",
            "--json",
        ])
        .env("AWS_ACCESS_KEY_ID", &c.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &c.secret_key)
        .output()
        .expect("running shale bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "shale bench failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let mixed: Vec<&&str> = lines
        .iter()
        .filter(|l| field(l, "phase") == "\"mixed\"")
        .collect();
    let mut ops = 0u64;
    for l in &mixed {
        assert_eq!(field(l, "corrupt"), "0", "{l}");
        assert!(l.contains("\"errors\":{}"), "no failed request: {l}");
        ops += field(l, "ops").parse::<u64>().expect("ops");
    }
    assert_eq!(
        ops, 120,
        "every operation of the mixed phase succeeded: {stdout}"
    );
    let ops_of = |op: &str| {
        mixed
            .iter()
            .find(|l| field(l, "op") == format!("\"{op}\""))
            .map(|l| field(l, "ops").parse::<u64>().expect("ops"))
            .unwrap_or(0)
    };
    assert!(ops_of("GET") > 0 && ops_of("PUT") > 0, "{stdout}");

    // What the bench left behind is there, under its prefixes.
    let list = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("bench/")
        .delimiter("/")
        .send()
        .await
        .expect("list");
    let dirs = list
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(dirs.contains("bench/p000/"), "{dirs}");
}
