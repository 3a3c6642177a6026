//! `shale admin` against three real `shale meta` processes: access keys are created
//! (generated and given), listed without secrets and deleted; `status` shows every group
//! with its leader and voters; a fourth meta node (started with `join = true`) is added
//! to every group with `meta add-voter` and a founding node removed with `meta
//! remove-voter`, after which the cluster (addressed through `SHALE_META` /
//! `SHALE_CLUSTER_ID`) still serves without it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use meta_raft::client::MetaClient;
use tests::{free_port, poll_until, shale_bin, Proc, TempDir};

const CLUSTER: &str = "it-admin";
const OBJECT_GROUPS: u32 = 2;

fn config(dir: &Path, id: u64, port: u16, founders: &[u16], join: bool) -> PathBuf {
    let members: String = founders
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "[[members]]\nnode_id = {}\naddr = \"127.0.0.1:{p}\"\n",
                i + 1
            )
        })
        .collect();
    let text = format!(
        "cluster_id = \"{CLUSTER}\"\nnode_id = {id}\nlisten = \"127.0.0.1:{port}\"\n\
         data_dir = \"{}\"\nobject_groups = {OBJECT_GROUPS}\njoin = {join}\n{members}",
        dir.join(format!("meta-{id}")).display()
    );
    let path = dir.join(format!("meta-{id}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(cfg: &Path) -> Proc {
    Proc::spawn("meta", &["meta", "--config", cfg.to_str().unwrap()]).unwrap()
}

/// Runs `shale admin <args>` with `env`; its stdout, or an error with its stderr.
fn admin(
    seeds: Option<&[String]>,
    env: &[(&str, String)],
    args: &[&str],
) -> Result<String, String> {
    let mut cmd = Command::new(shale_bin());
    cmd.arg("admin");
    if let Some(seeds) = seeds {
        cmd.args(["--meta", &seeds.join(","), "--cluster-id", CLUSTER]);
    }
    cmd.args(args)
        .env_remove("SHALE_META")
        .env_remove("SHALE_CLUSTER_ID")
        .env("RUST_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("running shale admin: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "shale admin {args:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The value of a `name = value` line.
fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("no {name} in {out:?}"))
        .trim()
        .to_owned()
}

/// `group G: voters …` lines of a membership command, as (group, voters).
fn voters(out: &str) -> Vec<(u64, String)> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("group ")?;
            let (g, v) = rest.split_once(": voters ")?;
            Some((g.parse().ok()?, v.trim().to_owned()))
        })
        .collect()
}

/// The group rows of `status`: (group, voters column), by the header's column offsets.
fn status_voters(out: &str) -> Vec<(u64, String)> {
    let mut lines = out
        .split("META GROUPS")
        .nth(1)
        .unwrap_or_else(|| panic!("no groups section in {out}"))
        .lines()
        .filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or_else(|| panic!("no header in {out}"));
    let at = header
        .find("VOTERS")
        .unwrap_or_else(|| panic!("no VOTERS column in {header}"));
    lines
        .filter_map(|l| {
            let group = l.split_whitespace().next()?.parse().ok()?;
            let voters = l.get(at..)?.split_whitespace().next()?;
            Some((group, voters.to_owned()))
        })
        .collect()
}

async fn serving(seeds: &[String]) {
    poll_until(Duration::from_secs(60), "meta cluster to serve", || {
        let seeds = seeds.to_vec();
        async move {
            let c = MetaClient::connect(seeds, CLUSTER).await.ok()?;
            for g in c.all_groups().await.ok()? {
                c.group_status(g).await.ok()?;
            }
            Some(())
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn admin_manages_keys_shows_status_and_changes_meta_membership() {
    let dir = TempDir::new("admin");
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let founders = &ports[..3];
    let mut procs: Vec<Proc> = (0..3)
        .map(|i| spawn(&config(dir.path(), i as u64 + 1, ports[i], founders, false)))
        .collect();
    let seeds: Vec<String> = founders.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    serving(&seeds).await;
    let s = Some(seeds.as_slice());

    // Keys: generated, given, listed without secrets, deleted.
    let out = admin(s, &[], &["key", "create", "--name", "alice"]).unwrap();
    let generated = field(&out, "access_key_id");
    let secret = field(&out, "secret_access_key");
    assert_eq!((generated.len(), secret.len()), (20, 40), "{out}");
    let out = admin(
        s,
        &[],
        &[
            "key",
            "create",
            "--id",
            "AKIDBOB",
            "--secret",
            "bobsecret",
            "--name",
            "bob",
        ],
    )
    .unwrap();
    assert_eq!(field(&out, "access_key_id"), "AKIDBOB");
    assert_eq!(field(&out, "secret_access_key"), "bobsecret");
    assert!(
        admin(
            s,
            &[],
            &["key", "create", "--id", "AKIDBOB", "--secret", "x"]
        )
        .is_err(),
        "a second key with the same id is refused"
    );
    let list = admin(s, &[], &["key", "list"]).unwrap();
    for want in [generated.as_str(), "alice", "AKIDBOB", "bob"] {
        assert!(list.contains(want), "{want} missing from {list}");
    }
    assert!(
        !list.contains(&secret) && !list.contains("bobsecret"),
        "{list}"
    );
    admin(s, &[], &["key", "delete", "AKIDBOB"]).unwrap();
    let list = admin(s, &[], &["key", "list"]).unwrap();
    assert!(
        !list.contains("AKIDBOB") && list.contains(&generated),
        "{list}"
    );

    // Status: every group (root + object groups) with a leader and three voters.
    let status = admin(s, &[], &["status"]).unwrap();
    assert!(
        status.contains("DATA NODES") && status.contains("(start)"),
        "{status}"
    );
    assert_eq!(
        status_voters(&status),
        [
            (0, "1,2,3".into()),
            (1, "1,2,3".into()),
            (2, "1,2,3".into())
        ],
        "{status}"
    );

    // 3 → 4: node 4 joins every group.
    let addr4 = format!("127.0.0.1:{}", ports[3]);
    procs.push(spawn(&config(dir.path(), 4, ports[3], founders, true)));
    let out = admin(
        s,
        &[],
        &["meta", "add-voter", "--node", "4", "--addr", &addr4],
    )
    .unwrap();
    assert_eq!(
        voters(&out),
        [
            (0, "1,2,3,4".into()),
            (1, "1,2,3,4".into()),
            (2, "1,2,3,4".into())
        ],
        "{out}"
    );
    let status = admin(s, &[], &["status"]).unwrap();
    assert!(
        status_voters(&status).iter().all(|(_, v)| v == "1,2,3,4"),
        "{status}"
    );

    // 4 → 3: node 1 leaves one group, then all, and is stopped.
    let out = admin(
        s,
        &[],
        &["meta", "remove-voter", "--node", "1", "--group", "2"],
    )
    .unwrap();
    assert_eq!(voters(&out), [(2, "2,3,4".into())], "{out}");
    let out = admin(s, &[], &["meta", "remove-voter", "--node", "1"]).unwrap();
    let mut got = voters(&out);
    got.sort();
    assert_eq!(
        got,
        [
            (0, "2,3,4".into()),
            (1, "2,3,4".into()),
            (2, "2,3,4".into())
        ],
        "{out}"
    );
    procs[0].kill9();

    // Addressed through the environment, the three remaining nodes serve.
    let survivors: Vec<String> = ports[1..]
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let env = [
        ("SHALE_META", survivors.join(",")),
        ("SHALE_CLUSTER_ID", CLUSTER.to_owned()),
    ];
    serving(&survivors).await;
    let status = admin(None, &env, &["status"]).unwrap();
    assert_eq!(
        status_voters(&status),
        [
            (0, "2,3,4".into()),
            (1, "2,3,4".into()),
            (2, "2,3,4".into())
        ],
        "{status}"
    );
    let list = admin(None, &env, &["key", "list"]).unwrap();
    assert!(list.contains(&generated), "{list}");
    // Without addresses it says what is missing.
    let err = admin(None, &[], &["status"]).unwrap_err();
    assert!(err.contains("SHALE_META"), "{err}");
}
