//! The event queue: durable before the webhook is answered, de-duplicated,
//! processed in order per record (one at a time) and in parallel across records,
//! retried with backoff, then dead-lettered with the reason.

use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError, json, now, timestamp};

/// An event to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Where it came from (`partner_center`, or a CRM connector name).
    pub source: String,
    /// Events with the same key are processed in order, one at a time
    /// (e.g. `referral:<id>`).
    pub record_key: String,
    /// Redeliveries with the same key are ignored.
    pub dedupe_key: String,
    /// The flow to run, if known (else dispatched by trigger).
    pub flow: Option<String>,
    /// The event itself.
    pub payload: Value,
}

/// The lifecycle of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Waiting (possibly until `next_attempt_at`).
    Queued,
    /// Claimed by a worker.
    Running,
    /// Processed.
    Done,
    /// Failed every attempt; waits for `cosync replay`.
    Dead,
}

impl EventState {
    fn as_str(self) -> &'static str {
        match self {
            EventState::Queued => "queued",
            EventState::Running => "running",
            EventState::Done => "done",
            EventState::Dead => "dead",
        }
    }

    fn parse(s: &str) -> EventState {
        match s {
            "running" => EventState::Running,
            "done" => EventState::Done,
            "dead" => EventState::Dead,
            _ => EventState::Queued,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Id (increasing with arrival).
    pub id: i64,
    /// Source.
    pub source: String,
    /// Ordering key.
    pub record_key: String,
    /// De-duplication key.
    pub dedupe_key: String,
    /// Flow to run.
    pub flow: Option<String>,
    /// The event.
    pub payload: Value,
    /// Arrival time.
    pub received_at: String,
    /// State.
    pub state: EventState,
    /// Attempts so far.
    pub attempts: u32,
    /// Earliest next attempt.
    pub next_attempt_at: String,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The last run's id.
    pub run_id: Option<String>,
}

/// When an event arrived and finished.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventTiming {
    /// Id.
    pub id: i64,
    /// Ordering key.
    pub record_key: String,
    /// State.
    pub state: EventState,
    /// Arrival.
    pub received_at: String,
    /// End (done or dead).
    pub finished_at: Option<String>,
    /// The last error (or `superseded by event N`).
    pub error: Option<String>,
}

/// Whether an event was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored with this id.
    New(i64),
    /// A redelivery of an event already stored.
    Duplicate,
}

const COLUMNS: &str = "id, source, record_key, dedupe_key, flow, payload, received_at, state, attempts, next_attempt_at, last_error, run_id";

/// The due events at the head of their record's queue, oldest first. Walks
/// the `events_due` index (the queued events' ids) in id order and stops at the
/// limit, so a long backlog costs nothing per claim (no sort of every queued
/// event); the record checks read the partial indexes of running and waiting
/// events.
pub(super) fn claim_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM events e INDEXED BY events_due
         WHERE state = 'queued' AND next_attempt_at <= ?1
           AND NOT EXISTS (SELECT 1 FROM events r INDEXED BY events_running WHERE r.record_key = e.record_key AND r.state = 'running')
           AND NOT EXISTS (SELECT 1 FROM events p INDEXED BY events_waiting WHERE p.record_key = e.record_key AND p.state = 'queued' AND p.id < e.id)
         ORDER BY id LIMIT ?2"
    )
}

fn row_to_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Event, String)> {
    let payload: String = row.get(5)?;
    let state: String = row.get(7)?;
    Ok((
        Event {
            id: row.get(0)?,
            source: row.get(1)?,
            record_key: row.get(2)?,
            dedupe_key: row.get(3)?,
            flow: row.get(4)?,
            payload: Value::Null,
            received_at: row.get(6)?,
            state: EventState::parse(&state),
            attempts: row.get(8)?,
            next_attempt_at: row.get(9)?,
            last_error: row.get(10)?,
            run_id: row.get(11)?,
        },
        payload,
    ))
}

fn finish((mut event, payload): (Event, String)) -> Result<Event, StoreError> {
    event.payload = json("event payload", &payload)?;
    Ok(event)
}

impl Store {
    /// Stores an event durably (the transaction is committed on return), unless it
    /// is a redelivery.
    ///
    /// An event says "this record changed: sync it", and flows read the record's
    /// current state, so a new event supersedes the events of the same record and
    /// flow still waiting (e.g. a retry scheduled for later): they are marked done
    /// with `superseded by event N`, and the record is synced once, now, from its
    /// latest state. Running events and dead letters are left alone.
    pub fn enqueue(&self, event: &NewEvent) -> Result<Enqueued, StoreError> {
        let mut conn = self.conn()?;
        // A savepoint: a transaction of its own, or nested in a group commit.
        let tx = conn.savepoint()?;
        let now = now();
        let changed = tx.prepare_cached("INSERT OR IGNORE INTO events (source, record_key, dedupe_key, flow, payload, received_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)")?.execute(params![event.source, event.record_key, event.dedupe_key, event.flow, event.payload.to_string(), now])?;
        if changed != 1 {
            return Ok(Enqueued::Duplicate);
        }
        let id = tx.last_insert_rowid();
        tx.prepare_cached(
            "UPDATE events SET state = 'done', last_error = ?1, finished_at = ?2
             WHERE record_key = ?3 AND flow IS ?4 AND state = 'queued' AND id < ?5",
        )?
        .execute(params![
            format!("superseded by event {id}"),
            now,
            event.record_key,
            event.flow,
            id
        ])?;
        tx.commit()?;
        Ok(Enqueued::New(id))
    }

    /// Claims up to `limit` events that are due, at most one per record, never a
    /// record that has an event running or an earlier event still waiting.
    pub fn claim(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.savepoint()?;
        let now = now();
        let claimed = {
            let mut stmt = tx.prepare_cached(&claim_sql())?;
            let rows = stmt.query_map(params![now, limit as i64], row_to_event)?;
            let mut out = Vec::new();
            for r in rows {
                out.push(finish(r?)?);
            }
            out
        };
        for e in &claimed {
            tx.prepare_cached(
                "UPDATE events SET state = 'running', attempts = attempts + 1 WHERE id = ?1",
            )?
            .execute(params![e.id])?;
        }
        tx.commit()?;
        Ok(claimed
            .into_iter()
            .map(|mut e| {
                e.state = EventState::Running;
                e.attempts += 1;
                e
            })
            .collect())
    }

    /// Marks an event processed.
    pub fn complete(&self, id: i64, run_id: Option<&str>) -> Result<(), StoreError> {
        self.conn()?.prepare_cached("UPDATE events SET state = 'done', run_id = ?2, last_error = NULL, finished_at = ?3 WHERE id = ?1")?.execute(params![id, run_id, now()])?;
        Ok(())
    }

    /// Records a failed attempt: the event is retried after `retry_in`, or — when
    /// `retry_in` is `None` (attempts exhausted) — moved to the dead letters.
    pub fn fail(
        &self,
        id: i64,
        error: &str,
        run_id: Option<&str>,
        retry_in: Option<std::time::Duration>,
    ) -> Result<EventState, StoreError> {
        let conn = self.conn()?;
        let state = match retry_in {
            Some(delay) => {
                let at = Utc::now()
                    + chrono::Duration::from_std(delay)
                        .unwrap_or_else(|_| chrono::Duration::seconds(60));
                conn.prepare_cached("UPDATE events SET state = 'queued', next_attempt_at = ?2, last_error = ?3, run_id = ?4 WHERE id = ?1")?.execute(params![id, timestamp(at), error, run_id])?;
                EventState::Queued
            }
            None => {
                conn.prepare_cached("UPDATE events SET state = 'dead', last_error = ?2, run_id = ?3, finished_at = ?4 WHERE id = ?1")?.execute(params![id, error, run_id, now()])?;
                EventState::Dead
            }
        };
        Ok(state)
    }

    /// Puts events left `running` by a crash back in the queue (call at start-up,
    /// before any worker runs). Returns how many.
    pub fn recover(&self) -> Result<usize, StoreError> {
        Ok(self
            .conn()?
            .prepare_cached("UPDATE events SET state = 'queued' WHERE state = 'running'")?
            .execute([])?)
    }

    /// Hands a claimed event back untouched (graceful shutdown mid-run).
    pub fn release(&self, id: i64) -> Result<(), StoreError> {
        self.conn()?.prepare_cached("UPDATE events SET state = 'queued', attempts = MAX(attempts - 1, 0) WHERE id = ?1 AND state = 'running'")?.execute(params![id])?;
        Ok(())
    }

    /// Re-queues a dead letter (or all of them) for an immediate retry with a fresh
    /// attempt count. Returns how many.
    pub fn replay(&self, id: Option<i64>) -> Result<usize, StoreError> {
        let conn = self.conn()?;
        let now = now();
        let n = match id {
            Some(id) => conn.prepare_cached("UPDATE events SET state = 'queued', attempts = 0, next_attempt_at = ?2 WHERE id = ?1 AND state = 'dead'")?.execute(params![id, now])?,
            None => conn.prepare_cached("UPDATE events SET state = 'queued', attempts = 0, next_attempt_at = ?1 WHERE state = 'dead'")?.execute(params![now])?,
        };
        Ok(n)
    }

    /// Events in a state, oldest first.
    pub fn events(&self, state: EventState, limit: usize) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn()?;
        // The state is written into the statement (one of four words) so that the
        // planner can use the partial index of queued, running or dead events.
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM events WHERE state = '{}' ORDER BY id LIMIT ?1",
            state.as_str()
        ))?;
        let rows = stmt.query_map(params![limit as i64], row_to_event)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(finish(r?)?);
        }
        Ok(out)
    }

    /// One event.
    pub fn event(&self, id: i64) -> Result<Option<Event>, StoreError> {
        let conn = self.conn()?;
        let found = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM events WHERE id = ?1"),
                params![id],
                row_to_event,
            )
            .optional()?;
        found.map(finish).transpose()
    }

    /// When each event after `after_id` arrived and finished (benchmarks).
    pub fn timings(&self, after_id: i64) -> Result<Vec<EventTiming>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT id, record_key, state, received_at, finished_at, last_error FROM events WHERE id > ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![after_id], |r| {
            Ok(EventTiming {
                id: r.get(0)?,
                record_key: r.get(1)?,
                state: EventState::parse(&r.get::<_, String>(2)?),
                received_at: r.get(3)?,
                finished_at: r.get(4)?,
                error: r.get(5)?,
            })
        })?;
        Ok(rows.filter_map(Result::ok).collect())
    }

    /// The newest event id (0 when there is none).
    pub fn last_event_id(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()?
            .query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))?)
    }

    /// Number of events per state (states without events are left out). The
    /// open states are counted on their partial indexes; `done` is the rest.
    pub fn counts(&self) -> Result<Vec<(EventState, u64)>, StoreError> {
        let conn = self.conn()?;
        let (queued, running, dead, all) = conn
            .prepare_cached(
                "SELECT (SELECT COUNT(*) FROM events WHERE state = 'queued'),
                    (SELECT COUNT(*) FROM events WHERE state = 'running'),
                    (SELECT COUNT(*) FROM events WHERE state = 'dead'),
                    (SELECT COUNT(*) FROM events)",
            )?
            .query_row([], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                    r.get::<_, i64>(3)? as u64,
                ))
            })?;
        let done = all.saturating_sub(queued + running + dead);
        Ok([
            (EventState::Dead, dead),
            (EventState::Done, done),
            (EventState::Queued, queued),
            (EventState::Running, running),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect())
    }
}
