//! Stage 5: the sync service (`cosync serve`). Partner Center webhooks and CRM
//! changes become durable events in the [`Store`]; workers run the flows their
//! triggers name, one event per record at a time, retrying with backoff and
//! parking what keeps failing as dead letters.
//!
//! - [`receiver`]: the axum app (`POST /webhooks/partner-center`, health, metrics);
//! - [`push`]: `POST /webhooks/dataverse`, CRM changes pushed by Dataverse;
//! - [`poller`]: CRM change detection by watermark;
//! - [`tracking`]: CRM change detection by Dataverse change tracking;
//! - [`worker`]: claims events and runs flows through the interpreter;
//! - [`dispatch`]: which flows an event starts;
//! - [`links`]: sync bases read before a run and saved after it;
//! - [`mirror`]: the CRM records last read or written, so that a steady-state
//!   change costs two API calls;
//! - [`metrics`]: Prometheus counters and gauges;
//! - [`retention`]: run records and finished events pruned after `state.keep_runs`.
//!
//! Every SQLite call runs on the store's owner thread (group commit,
//! [`crate::store::Store::call`]), never on the async runtime.

pub mod dispatch;
pub mod links;
pub mod metrics;
pub mod mirror;
pub mod poller;
pub mod push;
pub mod receiver;
pub mod retention;
pub mod tracking;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::compile::CompiledProject;
use crate::runtime::ConnectorSet;
use crate::server::verify::Verifier;
use crate::store::{Store, StoreError};

/// How failed events are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubled each time.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, or `None` once `attempt` attempts
    /// have been made. Jitter of up to a quarter keeps retries of many events apart.
    pub fn next_delay(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        let base = self.initial.saturating_mul(factor).min(self.max);
        let jitter = base.mul_f64(fastrand_fraction() * 0.25);
        Some(base.saturating_add(jitter).min(self.max))
    }
}

/// A uniform number in [0, 1).
fn fastrand_fraction() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0
}

/// Everything `cosync serve` needs; the CLI builds it from `cosync.yaml`.
pub struct ServiceConfig {
    /// The compiled project (its enabled flows are what runs).
    pub project: Arc<CompiledProject>,
    /// The connectors, over HTTP.
    pub connectors: Arc<dyn ConnectorSet>,
    /// The state store.
    pub store: Arc<Store>,
    /// Address to listen on (port 0 = a free port).
    pub listen: SocketAddr,
    /// Largest webhook body accepted.
    pub max_body_bytes: usize,
    /// Records processed in parallel.
    pub workers: usize,
    /// Retries of failed events.
    pub retry: RetryPolicy,
    /// Webhook signature verification.
    pub verifier: Arc<Verifier>,
    /// Hosts (`host` or `host:port`) a webhook's `ResourceUri` may name: the
    /// Partner Center connection's.
    pub resource_hosts: Vec<String>,
    /// How often CRMs are polled.
    pub poll_interval: Duration,
    /// Where polling starts when the store has no watermark yet: `None` = now
    /// (changes made before the first start are picked up by `cosync sync --full`).
    pub poll_from: Option<String>,
    /// Bounds of the record mirror ([`mirror`]).
    pub mirror: mirror::MirrorLimits,
    /// The key Dataverse webhooks must carry ([`push`]); `None` turns the
    /// endpoint off.
    pub dataverse_key: Option<crate::connector::secrets::Secret>,
    /// How long run records and finished events are kept (`state.keep_runs`,
    /// default 30 days): older ones are pruned at start-up and then hourly
    /// ([`retention`]). `None` keeps everything.
    pub keep_runs: Option<Duration>,
}

/// State shared by the receiver, the poller and the workers.
pub(crate) struct Shared {
    pub(crate) config: ServiceConfig,
    /// Woken when events are stored.
    pub(crate) wake: Notify,
    pub(crate) metrics: metrics::Metrics,
    /// CRM records last read or written.
    pub(crate) mirror: mirror::Mirror,
}

impl Shared {
    /// Wakes one idle worker per stored event (at most every worker). Waking
    /// them all for each event would send every idle worker to claim, and all
    /// but one would find nothing; a worker that is busy claims again when it is
    /// done, and a wake-up given to a worker that claims meanwhile passes on.
    pub(crate) fn wake_workers(&self, events: usize) {
        for _ in 0..events.min(self.config.workers.max(1)) {
            self.wake.notify_one();
        }
    }
}

/// Runs a store call off the async runtime, on the store's owner thread with
/// group commit ([`Store::call`]).
pub async fn blocking<T, F>(store: &Arc<Store>, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    store.call(f).await
}

/// A running service.
pub struct ServiceHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
}

impl ServiceHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL Partner Center posts webhooks to.
    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhooks/partner-center", self.addr)
    }

    /// The state store.
    pub fn store(&self) -> Arc<Store> {
        self.shared.config.store.clone()
    }

    /// Events stored, processed, failed so far, and the queue depth.
    pub fn metrics(&self) -> metrics::Snapshot {
        self.shared.metrics.snapshot()
    }

    /// Resolves when a stop was requested (e.g. `shutdown` from another task).
    pub async fn stopped(&mut self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Stops accepting webhooks, lets running events finish (up to `grace`), hands
    /// back what did not, and waits for every task.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        self.shared.wake.notify_waiters();
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("shutdown: work still running after {grace:?}; aborting it");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        // Events whose run was aborted are handed back for the next start.
        let _ = blocking(&self.shared.config.store, |s| s.recover()).await;
    }
}

/// Starts the service: recovers events a crash left running, binds the listener,
/// and spawns the receiver, the poller, the workers and the pruner.
pub async fn start(config: ServiceConfig) -> std::io::Result<ServiceHandle> {
    let recovered = blocking(&config.store, |s| s.recover())
        .await
        .map_err(std::io::Error::other)?;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "events left running by a previous process are queued again"
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let workers = config.workers.max(1);
    let mirror = mirror::Mirror::new(config.mirror);
    let shared = Arc::new(Shared {
        mirror,
        config,
        wake: Notify::new(),
        metrics: metrics::Metrics::new(),
    });
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let app = receiver::router(shared.clone());
    let mut rx = stop_rx.clone();
    tasks.spawn(async move {
        let graceful = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(graceful)
            .await
        {
            tracing::error!("webhook receiver stopped: {e}");
        }
    });
    for n in 0..workers {
        tasks.spawn(worker::run(shared.clone(), n, stop_rx.clone()));
    }
    tasks.spawn(poller::run(shared.clone(), stop_rx.clone()));
    tasks.spawn(retention::run(shared.clone(), stop_rx.clone()));
    tasks.spawn(metrics::refresh(shared.clone(), stop_rx));
    tracing::info!(%addr, workers, "cosync serve is listening");
    Ok(ServiceHandle {
        addr,
        stop,
        tasks,
        shared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_bound_and_stops_after_the_attempts() {
        let p = RetryPolicy {
            attempts: 4,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(3),
        };
        let d1 = p.next_delay(1).unwrap_or_default();
        let d2 = p.next_delay(2).unwrap_or_default();
        let d3 = p.next_delay(3).unwrap_or_default();
        assert!(d1 >= Duration::from_secs(1) && d1 <= Duration::from_millis(1250));
        assert!(d2 >= Duration::from_secs(2) && d2 <= Duration::from_millis(2500));
        assert_eq!(d3, Duration::from_secs(3));
        assert_eq!(p.next_delay(4), None);
    }
}
