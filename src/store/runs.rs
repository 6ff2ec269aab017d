//! Run history, the local audit log and CRM polling watermarks.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, json, now};
use crate::record::RunRecord;
use crate::spec::flow::RunStatus;

/// One line of `cosync runs list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Flow.
    pub flow: String,
    /// Final status.
    pub status: String,
    /// Start time.
    pub started_at: String,
    /// Wall time.
    pub duration_ms: u64,
    /// The event that started it.
    pub event_id: Option<i64>,
}

/// One line of the local audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// When.
    pub at: String,
    /// Referral.
    pub referral_id: Option<String>,
    /// CRM record.
    pub crm_id: Option<String>,
    /// Flow.
    pub flow: Option<String>,
    /// Run.
    pub run_id: Option<String>,
    /// What happened.
    pub message: String,
}

fn status_text(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    }
}

/// A run record ready to store, serialized and compressed by the caller (the
/// service does it on its own threads, not on the store's owner thread).
///
/// Records are stored as LZ4 blocks (the size prepended): a run's step records
/// repeat the records it read and wrote, so a 12 KB record takes about 4 KB,
/// one page instead of an overflow chain, which is most of what the service
/// writes per event. Records stored as JSON text (before compression) still read.
#[derive(Debug, Clone)]
pub struct RunRow {
    run_id: String,
    flow: String,
    status: RunStatus,
    started_at: String,
    duration_ms: u64,
    record: Vec<u8>,
}

impl RunRow {
    /// Serializes a run record.
    pub fn new(record: &RunRecord) -> Result<RunRow, StoreError> {
        let text = serde_json::to_string(record).map_err(|source| StoreError::Json {
            what: "run record",
            source,
        })?;
        Ok(RunRow {
            run_id: record.run_id.clone(),
            flow: record.flow.clone(),
            status: record.status,
            started_at: record.started_at.clone(),
            duration_ms: record.duration_ms,
            record: lz4_flex::compress_prepend_size(text.as_bytes()),
        })
    }
}

impl Store {
    /// Stores a run record.
    pub fn save_run(&self, record: &RunRecord, event_id: Option<i64>) -> Result<(), StoreError> {
        self.save_run_row(&RunRow::new(record)?, event_id)
    }

    /// Stores a serialized run record.
    pub fn save_run_row(&self, row: &RunRow, event_id: Option<i64>) -> Result<(), StoreError> {
        self.conn()?.prepare_cached("INSERT OR REPLACE INTO runs (run_id, flow, status, started_at, duration_ms, event_id, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?.execute(params![row.run_id, row.flow, status_text(row.status), row.started_at, row.duration_ms as i64, event_id, row.record])?;
        Ok(())
    }

    /// Recent runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT run_id, flow, status, started_at, duration_ms, event_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?1")?;
        let rows = stmt.query_map(params![limit as i64], |r| {
            Ok(RunSummary {
                run_id: r.get(0)?,
                flow: r.get(1)?,
                status: r.get(2)?,
                started_at: r.get(3)?,
                duration_ms: r.get::<_, i64>(4)? as u64,
                event_id: r.get(5)?,
            })
        })?;
        Ok(rows.filter_map(Result::ok).collect())
    }

    /// One run's full record (by id or unique id prefix).
    pub fn run(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let conn = self.conn()?;
        let stored: Option<rusqlite::types::Value> = conn.prepare_cached("SELECT record FROM runs WHERE run_id = ?1 OR run_id LIKE ?2 || '%' ORDER BY run_id LIMIT 1")?.query_row(params![id, id], |r| r.get(0))
            .optional()?;
        stored.map(read_record).transpose()
    }

    /// Appends to the local audit log.
    pub fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.conn()?.prepare_cached("INSERT INTO audit (at, referral_id, crm_id, flow, run_id, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?.execute(params![if entry.at.is_empty() { now() } else { entry.at.clone() }, entry.referral_id, entry.crm_id, entry.flow, entry.run_id, entry.message])?;
        Ok(())
    }

    /// The audit log, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT at, referral_id, crm_id, flow, run_id, message FROM audit ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt.query_map(params![limit as i64], |r| {
            Ok(AuditEntry {
                at: r.get(0)?,
                referral_id: r.get(1)?,
                crm_id: r.get(2)?,
                flow: r.get(3)?,
                run_id: r.get(4)?,
                message: r.get(5)?,
            })
        })?;
        Ok(rows.filter_map(Result::ok).collect())
    }

    /// The polling watermark of an entity: (modified time, id tie-breaker).
    pub fn watermark(
        &self,
        connector: &str,
        entity: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .prepare_cached(
                "SELECT modified, last_id FROM watermarks WHERE connector = ?1 AND entity = ?2",
            )?
            .query_row(params![connector, entity], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Advances the polling watermark.
    pub fn set_watermark(
        &self,
        connector: &str,
        entity: &str,
        modified: &str,
        last_id: &str,
    ) -> Result<(), StoreError> {
        self.conn()?.prepare_cached("INSERT INTO watermarks (connector, entity, modified, last_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (connector, entity) DO UPDATE SET modified = excluded.modified, last_id = excluded.last_id")?.execute(params![connector, entity, modified, last_id])?;
        Ok(())
    }
}

/// A stored run record: an LZ4 block (see [`RunRow`]) or JSON text.
fn read_record(stored: rusqlite::types::Value) -> Result<serde_json::Value, StoreError> {
    use rusqlite::types::Value as Stored;
    let corrupt = |why: String| StoreError::Corrupt {
        what: "run record",
        why,
    };
    match stored {
        Stored::Text(text) => json("run record", &text),
        Stored::Blob(block) => {
            let bytes = lz4_flex::decompress_size_prepended(&block)
                .map_err(|e| corrupt(format!("cannot decompress it: {e}")))?;
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                what: "run record",
                source,
            })
        }
        other => Err(corrupt(format!("stored as {:?}", other.data_type()))),
    }
}
