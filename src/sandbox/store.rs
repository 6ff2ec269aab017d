//! Optional persistence (`--state FILE`): one SQLite table of JSON rows by namespace and
//! key, in WAL mode, written by a dedicated thread so the async runtime never blocks
//! on disk. Operations are applied in the order they were queued.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, params};

/// A durable write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StoreOp {
    /// Insert or replace one row.
    Put {
        namespace: String,
        key: String,
        value: String,
    },
    /// Delete one row.
    Delete { namespace: String, key: String },
    /// Delete every record row (reset); tokens, counters and the signing key stay.
    ClearData,
}

enum Message {
    Ops(Vec<StoreOp>),
    Flush(tokio::sync::oneshot::Sender<()>),
    Stop,
}

/// Where durable writes go: nowhere (in memory) or the SQLite thread.
pub(crate) struct Store {
    sender: Option<std::sync::Mutex<mpsc::Sender<Message>>>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// Rows read at start: (namespace, key, JSON text).
pub(crate) type StoredRows = Vec<(String, String, String)>;

impl Store {
    /// No persistence.
    pub(crate) fn memory() -> Self {
        Store {
            sender: None,
            thread: std::sync::Mutex::new(None),
        }
    }

    /// Opens (or creates) the database, reads every row, and starts the writer thread.
    /// Blocking: call it from `spawn_blocking`.
    pub(crate) fn open(path: &Path) -> Result<(Store, StoredRows), rusqlite::Error> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS sandbox_rows (
                 namespace TEXT NOT NULL,
                 key TEXT NOT NULL,
                 value TEXT NOT NULL,
                 PRIMARY KEY (namespace, key)
             );",
        )?;
        let rows = {
            let mut statement = connection
                .prepare("SELECT namespace, key, value FROM sandbox_rows ORDER BY rowid")?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?
        };
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sandbox-store".into())
            .spawn(move || writer(connection, receiver))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok((
            Store {
                sender: Some(std::sync::Mutex::new(sender)),
                thread: std::sync::Mutex::new(Some(thread)),
            },
            rows,
        ))
    }

    /// True when writes are persisted.
    pub(crate) fn is_persistent(&self) -> bool {
        self.sender.is_some()
    }

    /// Queues operations (never blocks).
    pub(crate) fn send(&self, ops: Vec<StoreOp>) {
        if ops.is_empty() {
            return;
        }
        if let Some(sender) = &self.sender {
            let sender = sender
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if sender.send(Message::Ops(ops)).is_err() {
                tracing::debug!("sandbox state store is closed; a late write was dropped");
            }
        }
    }

    /// Waits until every queued operation is on disk.
    pub(crate) async fn flush(&self) {
        let Some(sender) = &self.sender else { return };
        let (done, wait) = tokio::sync::oneshot::channel();
        let sent = sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(Message::Flush(done))
            .is_ok();
        if sent {
            let _ = wait.await;
        }
    }

    /// Flushes, then stops the writer thread (closing the database).
    pub(crate) async fn close(&self) {
        self.flush().await;
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            if let Some(sender) = &self.sender {
                let _ = sender
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .send(Message::Stop);
            }
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn writer(mut connection: Connection, receiver: mpsc::Receiver<Message>) {
    while let Ok(message) = receiver.recv() {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut stop = false;
        let mut next = Some(message);
        while let Some(message) = next.take() {
            match message {
                Message::Stop => stop = true,
                Message::Ops(ops) => batch.extend(ops),
                Message::Flush(done) => flushes.push(done),
            }
            if !stop {
                next = receiver.try_recv().ok();
            }
        }
        if let Err(error) = apply(&mut connection, &batch) {
            tracing::error!(%error, "sandbox state store write failed");
        }
        for done in flushes {
            let _ = done.send(());
        }
        if stop {
            break;
        }
    }
}

fn apply(connection: &mut Connection, batch: &[StoreOp]) -> Result<(), rusqlite::Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let transaction = connection.transaction()?;
    for op in batch {
        match op {
            StoreOp::Put {
                namespace,
                key,
                value,
            } => {
                transaction.execute(
                    "INSERT OR REPLACE INTO sandbox_rows (namespace, key, value) VALUES (?1, ?2, ?3)",
                    params![namespace, key, value],
                )?;
            }
            StoreOp::Delete { namespace, key } => {
                transaction.execute(
                    "DELETE FROM sandbox_rows WHERE namespace = ?1 AND key = ?2",
                    params![namespace, key],
                )?;
            }
            StoreOp::ClearData => {
                transaction.execute(
                    "DELETE FROM sandbox_rows WHERE namespace NOT IN ('token', 'meta', 'cert')",
                    [],
                )?;
            }
        }
    }
    transaction.commit()
}
