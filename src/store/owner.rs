//! Group commit: one owner thread per store runs the async callers' work.
//!
//! The service's receiver, poller and workers hand closures to [`Store::call`].
//! The owner thread takes every closure waiting (up to [`MAX_BATCH`]; under
//! load it waits up to [`LINGER`] for more), runs them
//! back to back inside one `BEGIN IMMEDIATE … COMMIT`, and only then answers
//! each caller. Many events' writes thus share one WAL commit and its pages,
//! and nothing blocks the async runtime or spawns a thread per call.
//!
//! Each closure keeps its own atomicity: the store's multi-statement methods
//! run in savepoints, so one closure's failure rolls back only its own work. A
//! caller is answered only once the transaction holding its work has
//! committed (an event is stored durably before the webhook is answered); if
//! the commit fails, every caller of the batch gets the error. Should SQLite
//! roll a transaction back by itself (disk full, I/O error), the callers whose
//! work it held get an error and the rest of the batch runs in a new one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak, mpsc};

use super::{Store, StoreError};

/// At most this many closures share one transaction.
pub(crate) const MAX_BATCH: usize = 64;

/// How long a batch waits for more closures once calls come faster than one
/// per transaction (the last batch held more than one). Each commit writes the
/// tail pages of the queue, run and key indexes again, so under load bigger
/// batches write fewer pages per event (measured: 53 -> 41-45 KiB per event
/// written to disk, 3.7 -> 7-11 calls per commit at the maximum rate), for at
/// most this much added latency per call. An idle service never waits.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// What a closure leaves for after the commit: a function told the commit's
/// outcome, which answers the caller.
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A closure waiting for the owner thread.
pub(super) type Job = Box<dyn FnOnce(&Store) -> Reply + Send>;

/// How much the owner thread has batched.
#[derive(Debug, Default)]
pub(super) struct Counters {
    calls: AtomicU64,
    commits: AtomicU64,
}

impl Store {
    /// Calls run on the owner thread and transactions it committed so far: their
    /// ratio is the average batch.
    pub fn group_commits(&self) -> (u64, u64) {
        (
            self.batches.calls.load(Ordering::Relaxed),
            self.batches.commits.load(Ordering::Relaxed),
        )
    }

    /// Runs `f` on the store's owner thread, in a transaction shared with the
    /// other calls waiting, and returns its result once that transaction has
    /// committed. The owner thread starts on the first call and ends when the
    /// store is dropped.
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |store: &Store| {
            let result = f(store);
            Box::new(move |committed: Result<(), String>| {
                let answer = match committed {
                    Ok(()) => result,
                    Err(e) => result.and(Err(StoreError::Unavailable(format!(
                        "state store: the transaction did not commit: {e}"
                    )))),
                };
                let _ = tx.send(answer);
            })
        });
        self.owner()?.send(job).map_err(|_| {
            StoreError::Unavailable("state store: the owner thread has stopped".into())
        })?;
        rx.await.map_err(|_| {
            StoreError::Unavailable("state store: the owner thread dropped the call".into())
        })?
    }

    /// The owner thread's queue, starting the thread on first use.
    fn owner(self: &Arc<Self>) -> Result<&mpsc::Sender<Job>, StoreError> {
        if let Some(tx) = self.owner.get() {
            return Ok(tx);
        }
        let (tx, rx) = mpsc::channel::<Job>();
        if self.owner.set(tx).is_ok() {
            let weak = Arc::downgrade(self);
            if let Some(path) = &self.path {
                // A checkpointer copies WAL pages ahead of the writer's own
                // checkpoint ([`super::checkpoint`]).
                if let Err(e) = super::checkpoint::start(path.clone(), weak.clone()) {
                    tracing::warn!("state store: no background checkpoints ({e})");
                }
            }
            std::thread::Builder::new()
                .name("cosync-store".into())
                .spawn(move || own(weak, rx))
                .map_err(|e| {
                    StoreError::Unavailable(format!("state store: cannot start its thread: {e}"))
                })?;
        }
        self.owner
            .get()
            .ok_or_else(|| StoreError::Unavailable("state store: no owner thread".into()))
    }

    /// Starts the batch's transaction.
    fn begin(&self) -> Result<(), String> {
        let conn = self.conn().map_err(|e| e.to_string())?;
        conn.prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Commits the batch's transaction, or says why not (and rolls back).
    fn commit(&self) -> Result<(), String> {
        let conn = self.conn().map_err(|e| e.to_string())?;
        if conn.is_autocommit() {
            return Err("SQLite rolled the transaction back".into());
        }
        conn.prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
            .map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                e.to_string()
            })
    }

    /// Whether a transaction is open on the connection.
    fn in_transaction(&self) -> bool {
        self.conn().map(|c| !c.is_autocommit()).unwrap_or(false)
    }
}

/// The owner thread: batches until every sender (the store) is gone.
fn own(store: Weak<Store>, rx: mpsc::Receiver<Job>) {
    let mut busy = false;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        jobs.extend(rx.try_iter().take(MAX_BATCH - 1));
        if busy {
            let until = std::time::Instant::now() + LINGER;
            while jobs.len() < MAX_BATCH {
                let left = until.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        busy = jobs.len() > 1;
        // Dropping the jobs (when the store is gone) drops their senders, and
        // each caller sees its call dropped.
        let Some(store) = store.upgrade() else { return };
        run_batch(&store, jobs);
    }
}

/// Runs jobs in as few transactions as SQLite allows, answering each caller
/// after the commit of the transaction that held its work.
fn run_batch(store: &Store, jobs: Vec<Job>) {
    store
        .batches
        .calls
        .fetch_add(jobs.len() as u64, Ordering::Relaxed);
    store.batches.commits.fetch_add(1, Ordering::Relaxed);
    let mut replies: Vec<Reply> = Vec::with_capacity(jobs.len());
    let mut open = store.begin();
    for job in jobs {
        replies.push(job(store));
        if open.is_ok() && !store.in_transaction() {
            // SQLite ended the transaction on an error: what it held is gone.
            for reply in replies.drain(..) {
                reply(Err("SQLite rolled the transaction back".into()));
            }
            open = store.begin();
        }
    }
    let outcome = match open {
        Ok(()) => store.commit(),
        // Without a transaction each statement committed on its own.
        Err(_) => Ok(()),
    };
    for reply in replies {
        reply(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(&dir.path().join("s.db")).unwrap_or_else(|e| panic!("{e}"));
        (dir, Arc::new(store))
    }

    fn event(key: &str, dedupe: &str) -> super::super::NewEvent {
        super::super::NewEvent {
            source: "test".into(),
            record_key: key.into(),
            dedupe_key: dedupe.into(),
            flow: Some("f".into()),
            payload: serde_json::json!({"k": key}),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_calls_share_transactions_and_all_land() {
        let (dir, store) = store();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.spawn(async move {
                store
                    .call(move |s| s.enqueue(&event(&format!("r{i}"), &format!("d{i}"))))
                    .await
            });
        }
        let mut stored = 0;
        while let Some(r) = tasks.join_next().await {
            if let Ok(Ok(super::super::Enqueued::New(_))) = r {
                stored += 1;
            }
        }
        assert_eq!(stored, 200);
        // A second connection sees every event: the batches committed.
        let other = Store::open(&dir.path().join("s.db")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(other.last_event_id().unwrap_or_else(|e| panic!("{e}")), 200);
    }

    #[tokio::test]
    async fn a_failing_call_rolls_back_only_its_own_work() {
        let (_dir, store) = store();
        let first = store.call(|s| s.enqueue(&event("a", "d1"))).await;
        assert!(matches!(first, Ok(super::super::Enqueued::New(1))));
        // A closure that writes, then fails inside its savepoint, and one that
        // succeeds in the same batch.
        let failing = store.call(|s| {
            let mut conn = s.conn()?;
            let sp = conn.savepoint()?;
            sp.execute("UPDATE events SET state = 'dead' WHERE id = 1", [])?;
            sp.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            sp.commit()?;
            Ok(())
        });
        let ok = store.call(|s| s.enqueue(&event("b", "d2")));
        let (failing, ok) = tokio::join!(failing, ok);
        assert!(failing.is_err());
        assert!(matches!(ok, Ok(super::super::Enqueued::New(2))));
        let states = store
            .call(|s| s.counts())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !states
                .iter()
                .any(|(st, n)| *st == super::super::EventState::Dead && *n > 0),
            "{states:?}"
        );
    }

    #[tokio::test]
    async fn the_owner_thread_ends_with_the_store() {
        let (_dir, store) = store();
        store
            .call(|s| s.last_event_id())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let weak = Arc::downgrade(&store);
        drop(store);
        // The thread holds the store only while a batch runs.
        for _ in 0..100 {
            if weak.upgrade().is_none() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the store is still alive");
    }
}
