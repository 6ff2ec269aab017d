//! The pruner: deletes run records and finished events older than
//! [`ServiceConfig::keep_runs`](super::ServiceConfig::keep_runs) at start-up and
//! then every [`EVERY`], a bounded batch per store call ([`crate::store`]'s
//! retention), pausing between batches so the webhooks' and workers' calls
//! keep the writer. It stops with the service.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Shared, blocking};
use crate::store::{Store, StoreError};

/// How often a pass runs after the one at start-up.
pub const EVERY: Duration = Duration::from_secs(3600);
/// Run records deleted per store call.
pub const RUN_BATCH: usize = 500;
/// Event ids looked at (and so events deleted, at most) per store call.
pub const EVENT_SPAN: i64 = 1000;
/// The pause between two batches: a pass with much to delete (the first after
/// an upgrade) takes a share of the writer, not all of it.
const PAUSE: Duration = Duration::from_millis(20);

/// What a pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Run records.
    pub runs: u64,
    /// Finished events.
    pub events: u64,
}

/// The sizes of a pass's batches (tests use small ones).
#[derive(Debug, Clone, Copy)]
pub struct Batches {
    /// Run records per call.
    pub runs: usize,
    /// Event ids per call.
    pub events: i64,
    /// Pause between calls.
    pub pause: Duration,
}

impl Default for Batches {
    fn default() -> Self {
        Batches {
            runs: RUN_BATCH,
            events: EVENT_SPAN,
            pause: PAUSE,
        }
    }
}

/// The stored timestamp `keep` before now, or `None` when that is before any
/// time chrono can hold (nothing can be that old).
pub fn cutoff(keep: Duration) -> Option<String> {
    let keep = chrono::Duration::from_std(keep).ok()?;
    chrono::Utc::now()
        .checked_sub_signed(keep)
        .map(crate::store::timestamp)
}

/// One pass: deletes the run records started and the events finished before
/// `before`, batch by batch, each batch its own store call. Returns early (with
/// what was deleted so far) once `stop` turns true. `each` is told every
/// batch's deletions (runs, events), as they commit.
pub async fn prune(
    store: &Arc<Store>,
    before: &str,
    batches: Batches,
    stop: &watch::Receiver<bool>,
    mut each: impl FnMut(usize, usize),
) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
    loop {
        if *stop.borrow() {
            return Ok(pruned);
        }
        let cut = before.to_string();
        let limit = batches.runs.max(1);
        let n = blocking(store, move |s| s.prune_runs(&cut, limit)).await?;
        pruned.runs += n as u64;
        each(n, 0);
        if n < limit {
            break;
        }
        pause(batches.pause, stop).await;
    }
    let mut from = None;
    loop {
        if *stop.borrow() {
            return Ok(pruned);
        }
        let cut = before.to_string();
        let span = batches.events;
        let step = blocking(store, move |s| s.prune_events(&cut, from, span)).await?;
        pruned.events += step.deleted as u64;
        each(0, step.deleted);
        match step.next {
            Some(next) => from = Some(next),
            None => break,
        }
        if step.deleted > 0 {
            pause(batches.pause, stop).await;
        } else {
            // Nothing written: let the other tasks run, no need to wait.
            tokio::task::yield_now().await;
        }
    }
    Ok(pruned)
}

/// Sleeps `d`, or less when a stop is requested.
async fn pause(d: Duration, stop: &watch::Receiver<bool>) {
    let mut stop = stop.clone();
    tokio::select! {
        _ = stop.wait_for(|s| *s) => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// The pruner task: a pass at start-up, then every [`EVERY`], until stopped.
/// Does nothing when the service keeps everything (`keep_runs: None`).
pub(crate) async fn run(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let Some(keep) = shared.config.keep_runs else {
        return;
    };
    loop {
        if let Some(before) = cutoff(keep) {
            let metrics = &shared.metrics;
            let counted = |runs: usize, events: usize| {
                metrics.pruned("runs", runs);
                metrics.pruned("events", events);
            };
            match prune(
                &shared.config.store,
                &before,
                Batches::default(),
                &stop,
                counted,
            )
            .await
            {
                Ok(p) if p.runs > 0 || p.events > 0 => tracing::info!(
                    runs = p.runs,
                    events = p.events,
                    %before,
                    "state store: pruned run records and finished events older than state.keep_runs"
                ),
                Ok(_) => tracing::debug!(%before, "state store: nothing to prune"),
                Err(e) => tracing::warn!("state store: pruning failed, tried again later: {e}"),
            }
        }
        pause(EVERY, &stop).await;
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
