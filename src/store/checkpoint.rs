//! WAL checkpoints off the writer's path.
//!
//! By default SQLite checkpoints inside the commit that fills the WAL past 1000
//! pages: that commit copies the pages into the database file and syncs the
//! WAL and the file, and with group commit every caller of the batch waits for
//! it. Those two `fsync`s were where the store's thread waited on the disk
//! (sampled: all of its uninterruptible sleep), and the service's latency tail.
//! Once the store has an owner thread, a second connection on its own thread
//! runs a `PASSIVE` checkpoint every [`INTERVAL`] instead, which never blocks
//! the writer; the writer's own checkpoint stays as a safety net at
//! [`SAFETY_PAGES`]. Measured (`cosync bench`, BENCHMARKS.md): the steady-state
//! throughput rose by about 45 % and p95 at 500 events/s fell from about 22 ms
//! to 4–10 ms.

use std::path::PathBuf;
use std::sync::Weak;
use std::time::Duration;

use rusqlite::Connection;

use super::Store;

/// How often the checkpointer runs.
const INTERVAL: Duration = Duration::from_millis(250);

/// The writer checkpoints by itself only when the WAL holds this many pages
/// (about 80 MiB): the checkpointer has fallen behind or cannot run.
pub(super) const SAFETY_PAGES: i64 = 20_000;

/// Starts the checkpointer of the store at `path`; it ends with the store.
pub(super) fn start(path: PathBuf, store: Weak<Store>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("cosync-checkpoint".into())
        .spawn(move || run(&path, &store))
        .map(|_| ())
}

fn run(path: &std::path::Path, store: &Weak<Store>) {
    let conn = match Connection::open(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("state store: no background checkpoints ({e}); the writer checkpoints");
            return;
        }
    };
    let _ = conn.busy_timeout(Duration::from_secs(1));
    let mut failing = false;
    while store.strong_count() > 0 {
        std::thread::sleep(INTERVAL);
        // (busy, WAL pages, pages checkpointed)
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        match done {
            Ok(_) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!("state store: background checkpoint failed (will retry): {e}");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{NewEvent, Store};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_checkpointed_without_the_writer() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("s.db");
        let store = Arc::new(Store::open(&path).unwrap_or_else(|e| panic!("{e}")));
        // Past SQLite's default 1000-page checkpoint: the writer no longer
        // checkpoints at 1000 pages, the checkpointer does.
        let payload = serde_json::json!({"pad": "x".repeat(3000)});
        for i in 0..1500 {
            let event = NewEvent {
                source: "test".into(),
                record_key: format!("r{i}"),
                dedupe_key: format!("d{i}"),
                flow: None,
                payload: payload.clone(),
            };
            store
                .call(move |s| s.enqueue(&event))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let writer_limit: i64 = store
            .call(|s| {
                Ok(s.conn()?
                    .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(writer_limit, super::SAFETY_PAGES);
        // Pages reach the database file only by a checkpoint, and the writer's
        // own is far off: within a few intervals the checkpointer has run.
        let mut db_bytes = 0;
        for _ in 0..40 {
            std::thread::sleep(super::INTERVAL);
            db_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if db_bytes > 4_000_000 {
                break;
            }
        }
        assert!(
            db_bytes > 4_000_000,
            "pages reached the database file: {db_bytes}"
        );
    }
}
