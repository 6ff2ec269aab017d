//! WAL checkpoints, mostly off the writer's path.
//!
//! SQLite checkpoints inside the commit that fills the WAL past 1000 pages:
//! that commit copies the pages into the database file and syncs the WAL and
//! the file, and with group commit every caller of the batch waits for it.
//! Sampled, those two `fsync`s were all of the store thread's waits on the
//! disk, and the service's latency tail. Once the store has an owner thread, a
//! second connection on its own thread runs a `PASSIVE` checkpoint every
//! [`INTERVAL`], which never blocks the writer: it copies the pages and syncs
//! the file while the writer goes on. The writer keeps its own checkpoint at
//! 1000 pages, which then finds the pages copied and the file synced, and only
//! restarts the WAL (a `PASSIVE` checkpoint alone never catches up with a
//! writer that commits every few milliseconds, and the WAL would only grow).
//! Measured (`cosync bench`, BENCHMARKS.md): p99 at 100 events/s 6.6–8.1 ms
//! instead of 17.5–23.6; at 500 events/s and at the maximum rate the same as
//! without it. Leaving the writer's checkpoint to the thread alone made p99
//! at 500 events/s worse (up to 89 ms).

use std::path::PathBuf;
use std::sync::Weak;
use std::time::Duration;

use rusqlite::Connection;

use super::Store;

/// How often the checkpointer runs.
const INTERVAL: Duration = Duration::from_millis(250);

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
        // The writer's own checkpoint off (the first call starts the owner
        // thread and the checkpointer): only the checkpointer moves pages.
        store
            .call(|s| Ok(s.conn()?.pragma_update(None, "wal_autocheckpoint", 0)?))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
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
        // Pages reach the database file only by a checkpoint: within a few
        // intervals the checkpointer has run.
        let mut db_bytes = 0;
        for _ in 0..40 {
            tokio::time::sleep(super::INTERVAL).await;
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
