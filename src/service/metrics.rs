//! Prometheus metrics of one service instance (`GET /metrics`): events received,
//! stored, refused, processed, failed and dead-lettered; run durations; API calls
//! per connector; queue depth and dead letters (refreshed from the store); run
//! records and finished events pruned.
//!
//! Each service owns its recorder (not the process-global one), so several
//! services in one process (tests, `cosync demo`) keep separate figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Recorder, with_local_recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use serde::Serialize;
use tokio::sync::watch;

use super::{Shared, blocking};
use crate::store::EventState;

/// Counters of a service.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    received: AtomicU64,
    stored: AtomicU64,
    refused: AtomicU64,
    processed: AtomicU64,
    failed: AtomicU64,
    dead: AtomicU64,
    calls: AtomicU64,
    mirrored: AtomicU64,
    restarted: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Webhook deliveries received.
    pub received: u64,
    /// Events stored (webhooks and CRM changes).
    pub stored: u64,
    /// Webhooks refused.
    pub refused: u64,
    /// Events processed successfully.
    pub processed: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Events moved to the dead letters.
    pub dead: u64,
    /// Connector requests made by flows (sent to a service).
    pub calls: u64,
    /// Reads answered from the record mirror.
    pub mirrored: u64,
    /// Runs stopped on a stale read and run again.
    pub restarted: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty counters.
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        Metrics {
            recorder,
            handle,
            received: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            mirrored: AtomicU64::new(0),
            restarted: AtomicU64::new(0),
        }
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        with_local_recorder(&self.recorder as &dyn Recorder, f)
    }

    /// A webhook delivery arrived.
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.with(|| metrics::counter!("cosync_webhooks_received_total").increment(1));
    }

    /// A webhook was refused.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.with(|| metrics::counter!("cosync_webhooks_refused_total").increment(1));
    }

    /// `n` events were stored.
    pub fn stored(&self, n: usize) {
        self.stored.fetch_add(n as u64, Ordering::Relaxed);
        self.with(|| metrics::counter!("cosync_events_stored_total").increment(n as u64));
    }

    /// An event was processed by `flow` in `took`.
    pub fn processed(&self, flow: &str, status: &'static str, took: Duration) {
        self.processed.fetch_add(1, Ordering::Relaxed);
        let flow = flow.to_string();
        self.with(|| {
            metrics::counter!("cosync_events_processed_total", "flow" => flow.clone(), "status" => status)
                .increment(1);
            metrics::histogram!("cosync_run_duration_seconds", "flow" => flow)
                .record(took.as_secs_f64());
        });
    }

    /// An attempt failed; `dead` when it was the last.
    pub fn failed(&self, flow: &str, dead: bool) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if dead {
            self.dead.fetch_add(1, Ordering::Relaxed);
        }
        let flow = flow.to_string();
        self.with(|| {
            metrics::counter!("cosync_events_failed_total", "flow" => flow.clone()).increment(1);
            if dead {
                metrics::counter!("cosync_events_dead_lettered_total", "flow" => flow).increment(1);
            }
        });
    }

    /// A connector request of `connector`.
    pub fn call(&self, connector: &str, action: &'static str) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let connector = connector.to_string();
        self.with(|| {
            metrics::counter!("cosync_api_calls_total", "connector" => connector, "action" => action)
                .increment(1);
        });
    }

    /// `n` reads of a run were answered from the record mirror.
    pub fn mirrored(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.mirrored.fetch_add(n, Ordering::Relaxed);
        self.with(|| metrics::counter!("cosync_mirror_hits_total").increment(n));
    }

    /// A run of `flow` read stale data and is run again.
    pub fn restarted(&self, flow: &str) {
        self.restarted.fetch_add(1, Ordering::Relaxed);
        let flow = flow.to_string();
        self.with(|| metrics::counter!("cosync_runs_restarted_total", "flow" => flow).increment(1));
    }

    /// `n` records of `kind` (`runs` or `events`) were pruned after
    /// `state.keep_runs`.
    pub fn pruned(&self, kind: &'static str, n: usize) {
        if n == 0 {
            return;
        }
        self.with(|| metrics::counter!("cosync_pruned_total", "kind" => kind).increment(n as u64));
    }

    fn depth(&self, queued: u64, running: u64, dead: u64, mirror: usize) {
        self.with(|| {
            metrics::gauge!("cosync_mirror_records").set(mirror as f64);
            metrics::gauge!("cosync_queue_depth").set(queued as f64);
            metrics::gauge!("cosync_events_running").set(running as f64);
            metrics::gauge!("cosync_dead_letters").set(dead as f64);
        });
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> Snapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            received: get(&self.received),
            stored: get(&self.stored),
            refused: get(&self.refused),
            processed: get(&self.processed),
            failed: get(&self.failed),
            dead: get(&self.dead),
            calls: get(&self.calls),
            mirrored: get(&self.mirrored),
            restarted: get(&self.restarted),
        }
    }
}

/// Refreshes the queue gauges from the store and runs the exporter's upkeep,
/// every few seconds until stopped.
pub(crate) async fn refresh(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Ok(counts) = blocking(&shared.config.store, |s| s.counts()).await {
            let of = |state| {
                counts
                    .iter()
                    .find(|(s, _)| *s == state)
                    .map_or(0, |(_, n)| *n)
            };
            shared.metrics.depth(
                of(EventState::Queued),
                of(EventState::Running),
                of(EventState::Dead),
                shared.mirror.len(),
            );
        }
        shared.metrics.handle.run_upkeep();
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}
