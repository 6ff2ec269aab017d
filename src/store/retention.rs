//! Retention: run records and finished events older than `state.keep_runs` are
//! deleted, a bounded batch per call, so that the state file stops growing and
//! no call holds the store's single writer (the owner thread and its group
//! commit, [`super::owner`]) for long.
//!
//! Only history goes: run records (but not the last run of a dead letter), and
//! events that ended (`done`, superseded ones included). Queued and running
//! events are work still to do, and dead letters wait for `cosync replay`; links, conflicts, the audit log and the
//! polling watermarks are never pruned. SQLite reuses the freed pages, so the
//! file stops growing; it does not shrink (no `VACUUM`).

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

/// Where an events pass has got to ([`Store::prune_events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsPruned {
    /// Events deleted by this call.
    pub deleted: usize,
    /// The id the next call starts from, or `None` when the pass is over.
    pub next: Option<i64>,
}

/// The oldest run records started before `?1`, at most `?2` (found on the
/// `runs_started` index), except the last runs of dead letters: `cosync replay`
/// and `runs show` still need to tell why they failed.
pub(super) const PRUNE_RUNS: &str = "DELETE FROM runs WHERE rowid IN
    (SELECT rowid FROM runs WHERE started_at < ?1
       AND run_id NOT IN (SELECT run_id FROM events WHERE state = 'dead' AND run_id IS NOT NULL)
     ORDER BY started_at LIMIT ?2)";

/// The events of ids `?1..?2` that ended before `?3` (a range of the rowid).
pub(super) const PRUNE_EVENTS: &str = "DELETE FROM events WHERE id >= ?1 AND id < ?2
    AND state = 'done' AND COALESCE(finished_at, received_at) < ?3";

impl Store {
    /// Deletes at most `limit` run records started before `before` (a stored
    /// timestamp, [`super::timestamp`]), oldest first; returns how many. Call
    /// again until it returns less than `limit`. The `runs_started` index finds
    /// them without reading the table.
    pub fn prune_runs(&self, before: &str, limit: usize) -> Result<usize, StoreError> {
        Ok(self
            .conn()?
            .prepare_cached(PRUNE_RUNS)?
            .execute(params![before, limit as i64])?)
    }

    /// Deletes the events that ended (`done`) before `before` among `span` ids
    /// from the first event at or after `from` (the first event of all, for
    /// `from: None`); queued, running and dead events stay. Returns how many went and where the next
    /// call starts; call again with `next` until it is `None`.
    ///
    /// Events have no index on `finished_at`, and none is added: every state
    /// change of every event would have to update it (the queue's indexes are
    /// partial for that reason, see the schema). Ids grow with arrival instead,
    /// so a pass walks the table in id order, one range of `span` ids per call,
    /// on the rowid b-tree alone:
    ///
    /// - the call first seeks the first event at or after `from` (gaps, e.g.
    ///   the ids an earlier pass deleted, are skipped in one step): when there
    ///   is none, or it was received at or after `before`, the pass is over —
    ///   an event cannot have ended before it arrived, and the events after it
    ///   arrived later still;
    /// - it then deletes the `done` events of that range that finished before
    ///   `before`, reading at most `span` rows: the cost of a call is bounded
    ///   whatever the table's size, and old events kept (dead letters, an event
    ///   still retrying) are stepped over, never deleted.
    ///
    /// A `done` event without an end time (written by early versions) counts as
    /// ended when it arrived. An event received before `before` but finished
    /// after it (it retried for a while) is kept by this pass and goes in a
    /// later one. A pass reads the rows left in the old part of the table once,
    /// so its cost is that of the events it deletes plus the few old ones kept.
    pub fn prune_events(
        &self,
        before: &str,
        from: Option<i64>,
        span: i64,
    ) -> Result<EventsPruned, StoreError> {
        let over = EventsPruned {
            deleted: 0,
            next: None,
        };
        let conn = self.conn()?;
        let first: Option<(i64, String)> = conn
            .prepare_cached(
                "SELECT id, received_at FROM events WHERE id >= ?1 ORDER BY id LIMIT 1",
            )?
            .query_row(params![from.unwrap_or(i64::MIN)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((lo, received_at)) = first else {
            return Ok(over);
        };
        if received_at.as_str() >= before {
            return Ok(over);
        }
        let hi = lo.saturating_add(span.max(1));
        let deleted = conn
            .prepare_cached(PRUNE_EVENTS)?
            .execute(params![lo, hi, before])?;
        Ok(EventsPruned {
            deleted,
            next: (hi < i64::MAX).then_some(hi),
        })
    }
}
