//! A real `shale datanode` process on loopback, driven by a tonic client: streaming put,
//! ranged get, stat/verify, list, delete, health; typed errors for malformed requests;
//! kill -9 and restart keep acknowledged fragments; on-disk corruption is never served;
//! a bad config names its field.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::ids::{FragmentId, StripeId};
use proto::datanode as pb;
use proto::datanode::datanode_service_client::DatanodeServiceClient;
use proto::datanode::ErrorCode;
use tests::{free_port, poll_until, shale_bin, Proc, TempDir};
use tonic::transport::Channel;

type Client = DatanodeServiceClient<Channel>;

fn write_config(dir: &Path, port: u16, capacity: u64) -> std::path::PathBuf {
    let cfg = format!(
        r#"node_id = 7
rack = "rack-a"
listen = "127.0.0.1:{port}"

[[disks]]
id = 0
path = "{d0}"
capacity_bytes = {capacity}

[[disks]]
id = 1
path = "{d1}"
capacity_bytes = {capacity}
"#,
        d0 = dir.join("d0").display(),
        d1 = dir.join("d1").display(),
    );
    let path = dir.join("datanode.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

async fn start(dir: &Path, port: u16) -> (Proc, Client) {
    let cfg = write_config(dir, port, 64 << 20);
    let mut proc =
        Proc::spawn("datanode", &["datanode", "--config", cfg.to_str().unwrap()]).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let client = poll_until(
        Duration::from_secs(30),
        "datanode to accept connections",
        || {
            let url = url.clone();
            async move {
                let mut c = DatanodeServiceClient::connect(url).await.ok()?;
                c.health(pb::HealthRequest {}).await.ok()?;
                Some(c)
            }
        },
    )
    .await
    .unwrap();
    proc.check_running().unwrap();
    (proc, client)
}

fn fid(n: u128, index: u8) -> FragmentId {
    FragmentId {
        stripe: StripeId(0x5eed_0000_0000_0000_0000_0000_0000_0000 + n),
        index,
    }
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn header(id: FragmentId, disk: u32, data: &[u8]) -> pb::PutFragmentHeader {
    pb::PutFragmentHeader {
        id: Some(id.into()),
        disk,
        codec: u32::from(common::codec::CodecId::ReedSolomonSimd.as_u8()),
        k: 8,
        m: 4,
        length: data.len() as u64,
        crc32c: crc32c::crc32c(data),
    }
}

fn put_messages(
    h: pb::PutFragmentHeader,
    data: &[u8],
    chunk: usize,
) -> Vec<pb::PutFragmentRequest> {
    use pb::put_fragment_request::Part;
    let mut msgs = vec![pb::PutFragmentRequest {
        part: Some(Part::Header(h)),
    }];
    for c in data.chunks(chunk) {
        msgs.push(pb::PutFragmentRequest {
            part: Some(Part::Data(Bytes::copy_from_slice(c))),
        });
    }
    msgs
}

async fn put(
    c: &mut Client,
    msgs: Vec<pb::PutFragmentRequest>,
) -> Result<pb::FragmentInfo, tonic::Status> {
    let resp = c.put_fragment(futures::stream::iter(msgs)).await?;
    Ok(resp.into_inner().info.expect("put response has info"))
}

async fn get(
    c: &mut Client,
    id: FragmentId,
    disk: u32,
    offset: u64,
    length: u64,
) -> Result<Vec<u8>, tonic::Status> {
    let mut stream = c
        .get_fragment(pb::GetFragmentRequest {
            id: Some(id.into()),
            disk,
            offset,
            length,
        })
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await? {
        out.extend_from_slice(&chunk.data);
    }
    Ok(out)
}

fn code(r: Result<impl std::fmt::Debug, tonic::Status>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => proto::error_code(&s),
    }
}

#[tokio::test]
async fn datanode_process_stores_serves_and_survives_kill9() {
    let dir = TempDir::new("dn-life");
    let port = free_port();
    let (mut proc, mut c) = start(dir.path(), port).await;

    let health = c.health(pb::HealthRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (health.node_id, health.rack.as_str(), health.disks.len()),
        (7, "rack-a", 2)
    );

    let data = payload(300_000, 1);
    let id = fid(1, 3);
    let info = put(&mut c, put_messages(header(id, 1, &data), &data, 70_000))
        .await
        .unwrap();
    assert_eq!((info.length, info.crc32c), (300_000, crc32c::crc32c(&data)));
    assert_eq!(
        get(&mut c, id, 1, 0, 0).await.unwrap(),
        data,
        "whole fragment"
    );
    assert_eq!(
        get(&mut c, id, 1, 65_530, 200_000).await.unwrap(),
        &data[65_530..265_530]
    );
    let stat = c
        .stat_fragment(pb::StatFragmentRequest {
            id: Some(id.into()),
            disk: 1,
            verify: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stat.info.unwrap().length, 300_000);
    // A retry of the same put is idempotent; different bytes under the same id are not.
    put(&mut c, put_messages(header(id, 1, &data), &data, 100_000))
        .await
        .unwrap();
    let other = payload(300_000, 2);
    assert_eq!(
        code(put(&mut c, put_messages(header(id, 1, &other), &other, 100_000)).await),
        ErrorCode::AlreadyExists
    );
    // The fragment lives on disk 1 only.
    assert_eq!(code(get(&mut c, id, 0, 0, 0).await), ErrorCode::NotFound);

    // kill -9 and restart: the acknowledged fragment is still there, byte for byte.
    proc.kill9();
    let (_proc, mut c) = start(dir.path(), port).await;
    assert_eq!(get(&mut c, id, 1, 0, 0).await.unwrap(), data);
    let listed = c
        .list_fragments(pb::ListFragmentsRequest {
            disk: 1,
            after: None,
            limit: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.fragments.len(), 1);
    assert!(!listed.truncated);

    let del = c
        .delete_fragment(pb::DeleteFragmentRequest {
            id: Some(id.into()),
            disk: 1,
        })
        .await
        .unwrap();
    assert!(del.into_inner().existed);
    assert_eq!(code(get(&mut c, id, 1, 0, 0).await), ErrorCode::NotFound);
}

#[tokio::test]
async fn malformed_requests_get_typed_errors_and_change_nothing() {
    use pb::put_fragment_request::Part;
    let dir = TempDir::new("dn-bad");
    let port = free_port();
    let (mut proc, mut c) = start(dir.path(), port).await;
    let data = payload(10_000, 3);
    let id = fid(2, 0);

    // Data before header.
    let msgs = vec![pb::PutFragmentRequest {
        part: Some(Part::Data(Bytes::from_static(b"x"))),
    }];
    assert_eq!(code(put(&mut c, msgs).await), ErrorCode::InvalidArgument);
    // Empty stream.
    assert_eq!(code(put(&mut c, vec![]).await), ErrorCode::InvalidArgument);
    // Stripe id of the wrong length.
    let mut h = header(id, 0, &data);
    h.id = Some(pb::FragmentId {
        stripe_id: Bytes::from_static(&[1, 2, 3]),
        index: 0,
    });
    assert_eq!(
        code(put(&mut c, put_messages(h, &data, 4096)).await),
        ErrorCode::InvalidArgument
    );
    // Index beyond k+m, k over 255, unknown codec.
    let mut h = header(id, 0, &data);
    h.id = Some(fid(2, 12).into());
    assert_eq!(
        code(put(&mut c, put_messages(h, &data, 4096)).await),
        ErrorCode::InvalidArgument
    );
    let mut h = header(id, 0, &data);
    h.k = 1000;
    assert_eq!(
        code(put(&mut c, put_messages(h, &data, 4096)).await),
        ErrorCode::InvalidArgument
    );
    let mut h = header(id, 0, &data);
    h.codec = 77;
    assert_eq!(
        code(put(&mut c, put_messages(h, &data, 4096)).await),
        ErrorCode::InvalidArgument
    );
    // Wrong checksum, short body, long body, two headers.
    let mut h = header(id, 0, &data);
    h.crc32c ^= 0xff;
    assert_eq!(
        code(put(&mut c, put_messages(h, &data, 4096)).await),
        ErrorCode::ChecksumMismatch
    );
    assert_eq!(
        code(
            put(
                &mut c,
                put_messages(header(id, 0, &data), &data[..5000], 4096)
            )
            .await
        ),
        ErrorCode::InvalidArgument
    );
    let mut long = data.clone();
    long.push(0);
    assert_eq!(
        code(put(&mut c, put_messages(header(id, 0, &data), &long, 4096)).await),
        ErrorCode::InvalidArgument
    );
    let mut msgs = put_messages(header(id, 0, &data), &data, 4096);
    msgs.push(msgs[0].clone());
    assert_eq!(code(put(&mut c, msgs).await), ErrorCode::InvalidArgument);
    // Unknown disk, oversized declared length.
    assert_eq!(
        code(put(&mut c, put_messages(header(id, 9, &data), &data, 4096)).await),
        ErrorCode::UnknownDisk
    );
    let mut h = header(id, 0, &data);
    h.length = 1 << 40;
    assert_eq!(
        code(put(&mut c, put_messages(h, &data, 4096)).await),
        ErrorCode::TooLarge
    );
    // Nothing was stored by any of that.
    let listed = c
        .list_fragments(pb::ListFragmentsRequest {
            disk: 0,
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert!(listed.into_inner().fragments.is_empty());

    // Now store it properly and probe reads.
    put(&mut c, put_messages(header(id, 0, &data), &data, 4096))
        .await
        .unwrap();
    assert_eq!(
        code(get(&mut c, id, 0, 9_000, 2_000).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(get(&mut c, id, 0, u64::MAX, 0).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(get(&mut c, fid(99, 0), 0, 0, 0).await),
        ErrorCode::NotFound
    );
    let bad_list = c
        .list_fragments(pb::ListFragmentsRequest {
            disk: 0,
            after: None,
            limit: 0,
        })
        .await;
    assert_eq!(code(bad_list), ErrorCode::InvalidArgument);
    assert_eq!(get(&mut c, id, 0, 0, 0).await.unwrap(), data);

    // Flip one byte of the stored file on the real disk: the node must refuse to serve it.
    let frag_dir = dir.path().join("d0").join("frags");
    let file = std::fs::read_dir(&frag_dir)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .next()
        .expect("the fragment file");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[64 + 5000] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(code(get(&mut c, id, 0, 0, 0).await), ErrorCode::Corrupt);
    let verify = c
        .stat_fragment(pb::StatFragmentRequest {
            id: Some(id.into()),
            disk: 0,
            verify: true,
        })
        .await;
    assert_eq!(code(verify), ErrorCode::Corrupt);
    proc.check_running().expect("no input may crash the node");
}

#[test]
fn bad_config_is_rejected_naming_the_field() {
    let dir = TempDir::new("dn-cfg");
    let cfg = write_config(dir.path(), free_port(), 0);
    let out = std::process::Command::new(shale_bin())
        .args(["datanode", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("disks[0].capacity_bytes"),
        "stderr: {stderr}"
    );
}
