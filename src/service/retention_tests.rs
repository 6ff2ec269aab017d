use std::path::Path;

use super::*;
use crate::runtime::BoxFuture;
use crate::server::verify::{CertificateFetcher, MICROSOFT_ISSUER, Verifier};
use crate::service::{RetryPolicy, ServiceConfig, mirror::MirrorLimits, start};

const OLD: &str = "2026-01-01T00:00:00.000Z";
const CUTOFF: &str = "2026-03-01T00:00:00.000Z";

/// A state file with `old` run records and done events from January 2026, a
/// dead letter of the same time, and `new` run records and done events of now.
fn state(dir: &Path, old: usize, new: usize) -> Arc<Store> {
    let path = dir.join("state.db");
    let store = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let conn = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let now = crate::store::now();
    let mut id = 0;
    let mut add = |at: &str, state: &str| {
        id += 1;
        conn.execute(
            "INSERT INTO events (id, source, record_key, dedupe_key, payload, received_at, state, next_attempt_at, finished_at)
             VALUES (?1, 'test', ?2, ?2, '{}', ?3, ?4, ?3, ?3)",
            rusqlite::params![id, format!("e{id}"), at, state],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        conn.execute(
            "INSERT INTO runs VALUES (?1, 'f', 'succeeded', ?2, 1, ?3, '{}')",
            rusqlite::params![format!("{state}-{id}"), at, id],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    };
    for _ in 0..old {
        add(OLD, "done");
    }
    add(OLD, "dead");
    for _ in 0..new {
        add(&now, "done");
    }
    Arc::new(store)
}

/// (run records, events) left, and whether the dead letter is among them.
fn left(store: &Store) -> (usize, usize, bool) {
    let runs = store.runs(1000).unwrap_or_else(|e| panic!("{e}")).len();
    let events = store.timings(0).unwrap_or_else(|e| panic!("{e}"));
    let dead = events
        .iter()
        .any(|e| e.state == crate::store::EventState::Dead);
    (runs, events.len(), dead)
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_pass_deletes_the_old_history_batch_by_batch_and_keeps_the_rest() {
    let dir = tempdir();
    let store = state(dir.path(), 7, 2);
    let (_stop, stop) = watch::channel(false);
    let mut batches = Vec::new();
    let small = Batches {
        runs: 3,
        events: 3,
        pause: Duration::ZERO,
    };
    let pruned = prune(&store, CUTOFF, small, &stop, |r, e| batches.push((r, e)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // 8 old run records (the dead letter's run too), 7 old done events.
    assert_eq!(pruned, Pruned { runs: 8, events: 7 });
    assert!(
        batches.iter().all(|(r, e)| *r <= 3 && *e <= 3),
        "{batches:?}"
    );
    assert!(batches.len() >= 6, "one store call per batch: {batches:?}");
    assert_eq!(left(&store), (2, 3, true));
}

#[tokio::test]
async fn a_pass_stops_with_the_service() {
    let dir = tempdir();
    let store = state(dir.path(), 5, 0);
    let (tx, stop) = watch::channel(false);
    let _ = tx.send(true);
    let pruned = prune(&store, CUTOFF, Batches::default(), &stop, |_, _| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pruned, Pruned::default());
    assert_eq!(left(&store), (6, 6, true));
}

#[test]
fn the_cutoff_is_a_stored_timestamp_and_a_huge_keep_has_none() {
    let day = cutoff(Duration::from_secs(86_400)).unwrap_or_default();
    let expected = crate::store::timestamp(chrono::Utc::now() - chrono::Duration::days(1));
    assert_eq!(day.len(), expected.len(), "{day}");
    assert!(
        day.ends_with('Z') && day.as_str() <= expected.as_str(),
        "{day}"
    );
    assert_eq!(cutoff(Duration::from_secs(u64::MAX)), None);
}

/// Certificates are not needed: no webhook is posted.
struct NoCertificates;

impl CertificateFetcher for NoCertificates {
    fn fetch<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async { Err("no certificates in this test".to_string()) })
    }
}

fn config(store: Arc<Store>, keep_runs: Option<Duration>) -> ServiceConfig {
    let mut project =
        crate::compile::compile_folder(&Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings"));
    for f in &mut project.flows {
        f.enabled = false;
    }
    let connectors = Arc::new(crate::connector::memory::MemoryConnectorSet::new(&project));
    ServiceConfig {
        project: Arc::new(project),
        connectors,
        store,
        listen: ([127, 0, 0, 1], 0).into(),
        max_body_bytes: 65_536,
        workers: 1,
        retry: RetryPolicy {
            attempts: 1,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1),
        },
        verifier: Arc::new(Verifier::new(
            Vec::new(),
            MICROSOFT_ISSUER,
            Box::new(NoCertificates),
        )),
        resource_hosts: Vec::new(),
        poll_interval: Duration::from_secs(3600),
        poll_from: None,
        mirror: MirrorLimits::default(),
        dataverse_key: None,
        keep_runs,
    }
}

#[tokio::test]
async fn the_service_prunes_at_start_up_and_counts_it() {
    let dir = tempdir();
    let store = state(dir.path(), 4, 2);
    let service = start(config(
        store.clone(),
        Some(Duration::from_secs(30 * 86_400)),
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The counters move once each batch has committed.
    let counted = |m: &str| {
        m.contains("cosync_pruned_total{kind=\"runs\"} 5")
            && m.contains("cosync_pruned_total{kind=\"events\"} 4")
    };
    let mut metrics = service.shared.metrics.render();
    for _ in 0..200 {
        if counted(&metrics) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        metrics = service.shared.metrics.render();
    }
    service.shutdown(Duration::from_secs(5)).await;
    assert!(counted(&metrics), "{metrics}");
    assert_eq!(left(&store), (2, 3, true));
}

#[tokio::test]
async fn a_service_that_keeps_everything_prunes_nothing() {
    let dir = tempdir();
    let store = state(dir.path(), 4, 2);
    let service = start(config(store.clone(), None))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The pruner has had its chance: the service's other calls went through.
    tokio::time::sleep(Duration::from_millis(200)).await;
    service.shutdown(Duration::from_secs(5)).await;
    assert_eq!(left(&store), (7, 7, true));
}
