//! The durable local state of `cosync serve`, in one SQLite file (WAL): the event
//! queue with retries and dead letters, the links between referrals and CRM
//! records with their last synced values, run history, parked conflicts, the
//! audit log and CRM polling watermarks. Run history and finished events are
//! pruned after `state.keep_runs` ([`retention`]).
//!
//! The API is synchronous (rusqlite); async callers go through [`Store::call`],
//! which runs their work on the store's owner thread with group commit
//! ([`owner`]), so the runtime is never blocked.

mod checkpoint;
mod links;
mod owner;
mod queue;
mod retention;
mod runs;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, mpsc};

use rusqlite::Connection;
use rusqlite::config::DbConfig;

pub use links::{Conflict, Link};
pub use queue::{Enqueued, Event, EventState, EventTiming, NewEvent};
pub use retention::EventsPruned;
pub use runs::{AuditEntry, RunRow, RunSummary};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("state store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON document did not parse.
    #[error("state store: corrupt JSON in {what}: {source}")]
    Json {
        /// What was being read.
        what: &'static str,
        /// Why.
        source: serde_json::Error,
    },
    /// A stored value other than JSON did not decode.
    #[error("state store: corrupt {what}: {why}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// The connection mutex was poisoned by a panic elsewhere.
    #[error("state store: lock poisoned")]
    Poisoned,
    /// No such item.
    #[error("{0}")]
    NotFound(String),
    /// The owner thread could not run a call, or its transaction did not commit.
    #[error("{0}")]
    Unavailable(String),
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    record_key TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    flow TEXT,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    run_id TEXT,
    finished_at TEXT
);
-- The queue's indexes are partial: they hold only the events still open (queued,
-- running, dead), so they stay a few pages big however long the history grows, and
-- an event's state changes rewrite those few pages instead of a page of a
-- history-sized index at a random place (the record key is a random id).
DROP INDEX IF EXISTS events_ready;
DROP INDEX IF EXISTS events_queue;
DROP INDEX IF EXISTS events_record;
CREATE INDEX IF NOT EXISTS events_due ON events(id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS events_waiting ON events(record_key, id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS events_running ON events(record_key) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS events_dead ON events(id) WHERE state = 'dead';
CREATE TABLE IF NOT EXISTS links (
    mapping TEXT NOT NULL,
    referral_id TEXT NOT NULL,
    crm_id TEXT,
    base TEXT NOT NULL,
    synced_at TEXT NOT NULL,
    PRIMARY KEY (mapping, referral_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS links_crm ON links(mapping, crm_id);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    event_id INTEGER,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mapping TEXT NOT NULL,
    referral_id TEXT NOT NULL,
    crm_id TEXT,
    field TEXT NOT NULL,
    partner_center TEXT NOT NULL,
    crm TEXT NOT NULL,
    base TEXT,
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolution TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    referral_id TEXT,
    crm_id TEXT,
    flow TEXT,
    run_id TEXT,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watermarks (
    connector TEXT NOT NULL,
    entity TEXT NOT NULL,
    modified TEXT NOT NULL,
    last_id TEXT NOT NULL,
    PRIMARY KEY (connector, entity)
);
"#;

/// The state store.
pub struct Store {
    conn: Mutex<Connection>,
    /// The database file (`None` in memory).
    path: Option<PathBuf>,
    /// The owner thread's queue ([`Store::call`]), once started.
    owner: OnceLock<mpsc::Sender<owner::Job>>,
    /// Calls run and transactions committed by the owner thread.
    batches: owner::Counters,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// Now, as stored (RFC 3339 UTC with milliseconds; sorts as text).
pub(crate) fn now() -> String {
    timestamp(chrono::Utc::now())
}

/// A time as stored.
pub(crate) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (creating if needed) the store at `path`, in WAL mode.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        let mut store = Store::init(conn)?;
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// An in-memory store (tests, dry runs).
    pub fn in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Temporary tables and indexes in memory, and a 16 MiB page cache: the
        // queue, links and run history of a busy service stay hot.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "cache_size", -16_000)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        // Plans do not change with bound values: without this, SQLite (built with
        // STAT4) re-prepares a statement whenever a parameter that could steer its
        // plan gets a new value, e.g. the queue's claim on every call (its `now`).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: None,
            owner: OnceLock::new(),
            batches: owner::Counters::default(),
        })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }
}

fn json<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Json { what, source })
}

#[cfg(test)]
mod tests;
