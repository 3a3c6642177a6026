use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

/// Millisecond pauses: the retry loop is what is tested, not the waiting.
const FAST: Backoff = Backoff {
    initial: Duration::from_millis(1),
    max: Duration::from_millis(4),
};

fn unavailable() -> MetaClientError {
    MetaClientError::Unavailable {
        retry_after: Duration::from_secs(1),
        detail: "no leader for group 0".into(),
    }
}

#[tokio::test]
async fn transient_failures_are_retried_until_connected() {
    let env = Env::seeded(1);
    let calls = AtomicU32::new(0);
    let got = retry_connect(&env, FAST, || {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        async move {
            match n {
                0..=4 => Err(unavailable()),
                5 => Err(MetaClientError::StaleGroupMap("moving".into())),
                6 => Err(MetaClientError::Internal("node restarting".into())),
                _ => Ok(n),
            }
        }
    })
    .await
    .expect("connected");
    assert_eq!(got, 7);
    assert_eq!(calls.load(Ordering::Relaxed), 8);
}

#[tokio::test]
async fn permanent_failures_end_at_once() {
    let env = Env::seeded(2);
    for permanent in [
        MetaClientError::WrongCluster("cluster id other, expected mine".into()),
        MetaClientError::Config("no seed addresses".into()),
        MetaClientError::Protocol("unknown message".into()),
    ] {
        let want = permanent.to_string();
        let mut once = Some(permanent);
        let calls = AtomicU32::new(0);
        let e = retry_connect(&env, FAST, || {
            calls.fetch_add(1, Ordering::Relaxed);
            let r: Result<(), _> = Err(once.take().unwrap_or_else(unavailable));
            async move { r }
        })
        .await
        .expect_err("permanent");
        assert_eq!(e.to_string(), want);
        assert_eq!(calls.load(Ordering::Relaxed), 1, "{want}");
    }
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let b = Backoff::default();
    let mut pause = b.initial;
    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(pause.as_millis());
        pause = b.next(pause);
    }
    assert_eq!(seen, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
}

#[tokio::test]
async fn no_seeds_is_a_configuration_error_not_a_retry() {
    let Err(e) = connect_meta(
        &Env::seeded(3),
        Vec::new(),
        "shale-dev".into(),
        Backoff::default(),
    )
    .await
    else {
        panic!("connected without seeds");
    };
    assert!(matches!(e, MetaClientError::Config(_)), "{e}");
}
