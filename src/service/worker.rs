//! Workers: claim due events (at most one per record at a time, in arrival order
//! per record), run the flow each names through the interpreter, store the run
//! record and an audit line, and complete the event — or schedule a retry with
//! backoff, or dead-letter it once the attempts are spent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;
use tracing::Instrument;

use super::links::{self, PairObserver};
use super::mirror::Cached;
use super::{Shared, blocking};
use crate::compile::{CompiledFlow, CompiledProject, ConnectorId};
use crate::runtime::trigger::trigger_from_event;
use crate::runtime::{BoxFuture, ConnectorError, ConnectorSet, Interpreter, Request, RunOptions};
use crate::spec::flow::{RunStatus, TriggerSpec};
use crate::store::{AuditEntry, Event, EventState, StoreError};

/// How long an idle worker sleeps before looking for due retries.
const IDLE: Duration = Duration::from_millis(200);

/// Times a run stopped on a stale read is run again at once before the event
/// is failed and retried with backoff like any other failure.
const MAX_RESTARTS: u32 = 3;

/// One worker: claims and processes events until `stop`.
pub(crate) async fn run(shared: Arc<Shared>, n: usize, mut stop: watch::Receiver<bool>) {
    // The next event, claimed in the same store trip that ended the last one.
    let mut next: Option<Claimed> = None;
    loop {
        if *stop.borrow() {
            if let Some(c) = next.take() {
                // Claimed as the last run ended, never started: back to the queue.
                let id = c.event.id;
                if let Err(err) = blocking(&shared.config.store, move |s| s.release(id)).await {
                    tracing::error!(event = id, "cannot hand the event back: {err}");
                }
            }
            return;
        }
        // Registered before the claim, so that an event stored while the claim
        // runs still wakes this worker.
        let wake = shared.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let claimed = match next.take() {
            Some(c) => Ok(Some(c)),
            None => {
                let project = shared.config.project.clone();
                blocking(&shared.config.store, move |s| claim_next(s, &project)).await
            }
        };
        let Claimed { event, prepared } = match claimed {
            Ok(Some(c)) => c,
            Ok(None) => {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = wake => {}
                    _ = tokio::time::sleep(IDLE) => {}
                }
                continue;
            }
            Err(e) => {
                tracing::error!(worker = n, "cannot claim events: {e}");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
        };
        let span = tracing::info_span!("event", id = event.id, record = %event.record_key, flow = event.flow.as_deref().unwrap_or("-"));
        let id = event.id;
        let attempts = event.attempts;
        let run = std::panic::AssertUnwindSafe(
            process(&shared, event.clone(), prepared).instrument(span),
        );
        match futures_util::FutureExt::catch_unwind(run).await {
            Ok(claimed) => next = claimed,
            Err(panic) => {
                // A bug must not leave the record blocked behind a "running" event.
                let reason = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(event = id, "internal error while processing: {reason}");
                let delay = shared.config.retry.next_delay(attempts);
                let message = format!("internal error: {reason}");
                let _ = blocking(&shared.config.store, move |s| {
                    s.fail(id, &message, None, delay)
                })
                .await;
            }
        }
    }
}

/// The flow an event names.
fn flow_of<'p>(project: &'p CompiledProject, event: &Event) -> Result<&'p CompiledFlow, String> {
    let name = event.flow.as_deref().ok_or("the event names no flow")?;
    project
        .flow(name)
        .ok_or_else(|| format!("the project has no flow `{name}` any more"))
}

/// A claimed event, with what the store trip that claimed it worked out.
pub(crate) struct Claimed {
    event: Event,
    prepared: Prepared,
}

/// An event's trigger and the link bases its run reads, or why the event has
/// no trigger (its flow is gone, or its payload cannot become one).
type Prepared = Result<(Value, Result<Bases, StoreError>), String>;

/// The link bases of a run, by mapping.
type Bases = std::collections::BTreeMap<String, crate::mapping::Base>;

/// Claims the next due event and, in the same store trip, reads the bases of
/// the record it is about.
fn claim_next(
    s: &crate::store::Store,
    project: &CompiledProject,
) -> Result<Option<Claimed>, StoreError> {
    let Some(event) = s.claim(1)?.pop() else {
        return Ok(None);
    };
    let prepared = flow_of(project, &event)
        .and_then(|flow| trigger_of(project, flow, &event))
        .map(|trigger| {
            let bases = links::bases(s, &links::mapping_names(project), &trigger);
            (trigger, bases)
        });
    Ok(Some(Claimed { event, prepared }))
}

/// The trigger variables of an event for its flow.
fn trigger_of(
    project: &CompiledProject,
    flow: &CompiledFlow,
    event: &Event,
) -> Result<Value, String> {
    let key_field = match &flow.trigger {
        Some(TriggerSpec::CrmChange(t)) => project
            .connector_id(&t.connector)
            .map(|c| project.connector(c).key_field(&t.entity)),
        _ => None,
    };
    trigger_from_event(
        flow.trigger.as_ref(),
        event.payload.clone(),
        key_field.as_deref(),
    )
}

/// Processes one claimed event with what its claim prepared. When its run
/// ended, the store trip that ends it also claims the worker's next event,
/// which is returned.
pub(crate) async fn process(
    shared: &Arc<Shared>,
    event: Event,
    prepared: Prepared,
) -> Option<Claimed> {
    let project = shared.config.project.clone();
    let flow = match flow_of(&project, &event) {
        Ok(f) => f,
        Err(reason) => {
            finish_failed(shared, &event, "-", &reason, None, None).await;
            return None;
        }
    };
    let (trigger, read) = match prepared {
        Ok(p) => p,
        Err(reason) => {
            // A payload that cannot become a trigger never will: dead at once.
            finish_failed(shared, &event, &flow.name, &reason, None, Some(0)).await;
            return None;
        }
    };
    let started = Instant::now();
    let counting = Counting {
        inner: shared.config.connectors.as_ref(),
        project: &project,
        metrics: &shared.metrics,
    };
    let bases = match read {
        Ok(b) => b,
        Err(e) => {
            finish_failed(
                shared,
                &event,
                &flow.name,
                &format!("cannot read the links: {e}"),
                None,
                None,
            )
            .await;
            return None;
        }
    };
    let mut restarts = 0;
    let (outcome, mut observer) = loop {
        let mut observer = PairObserver::default();
        let options = RunOptions {
            bases: bases.clone(),
            ..RunOptions::default()
        };
        let cached = Cached::new(&counting, &shared.mirror, &project);
        let outcome = Interpreter::new(&project, &cached)
            .run(flow, trigger.clone(), &mut observer, options)
            .await;
        shared.metrics.mirrored(cached.hits());
        if outcome.status != RunStatus::Failed {
            break (outcome, observer);
        }
        cached.forget();
        let stale = outcome
            .error
            .as_ref()
            .is_some_and(|e| e.code == crate::runtime::STALE_READ);
        if stale && restarts < MAX_RESTARTS {
            // The run read a mirrored record that has changed since; nothing was
            // written over it. Run it again on fresh reads.
            restarts += 1;
            shared.metrics.restarted(&flow.name);
            tracing::debug!(restarts, "stale read; running the flow again");
            continue;
        }
        break (outcome, observer);
    };
    let took = started.elapsed();
    let pairs = std::mem::take(&mut observer.pairs);
    let record = observer.record.finish(&outcome);
    let run_id = record.run_id.clone();
    let (referral_id, crm_id) = sides(&project, &record.trigger, &record.writes);
    let summary = match (&record.status, &record.message, &record.error) {
        (RunStatus::Failed, Some(m), _) => format!("failed: {m}"),
        (RunStatus::Failed, None, Some(e)) => format!("failed: {}", e.message),
        (status, Some(m), _) => format!("{}: {m}", status_word(*status)),
        (status, None, _) => {
            let writes = record.writes.len();
            format!(
                "{} ({writes} write{})",
                status_word(*status),
                if writes == 1 { "" } else { "s" }
            )
        }
    };
    let entry = AuditEntry {
        at: crate::store::now(),
        referral_id,
        crm_id,
        flow: Some(flow.name.clone()),
        run_id: Some(run_id.clone()),
        message: summary.clone(),
    };
    let succeeded = outcome.status == RunStatus::Succeeded;
    let ended = outcome.status != RunStatus::Failed;
    let id = event.id;
    // One trip to the store: the run record, the audit line, the links and —
    // unless the run failed — the event's completion.
    let row = crate::store::RunRow::new(&record);
    drop(record);
    let saved = {
        let run_id = run_id.clone();
        let project = project.clone();
        blocking(&shared.config.store, move |s| {
            let kept = row
                .and_then(|row| s.save_run_row(&row, Some(id)))
                .and_then(|()| s.audit(&entry))
                .and_then(|()| {
                    if succeeded {
                        links::save(s, &pairs)
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = kept {
                tracing::error!(run = %run_id, "cannot store the run record: {e}");
            }
            if !ended {
                return Ok(None);
            }
            s.complete(id, Some(&run_id))?;
            // The next event, in the same trip; a failed claim is retried by
            // the worker's loop.
            Ok(claim_next(s, &project).ok().flatten())
        })
        .await
    };
    match outcome.status {
        RunStatus::Succeeded | RunStatus::Cancelled => {
            shared
                .metrics
                .processed(&flow.name, status_word(outcome.status), took);
            tracing::info!(run = %run_id, took_ms = took.as_millis() as u64, "{summary}");
            saved.unwrap_or_else(|e| {
                tracing::error!(run = %run_id, "cannot complete the event: {e}");
                None
            })
        }
        RunStatus::Failed => {
            shared.metrics.processed(&flow.name, "failed", took);
            finish_failed(shared, &event, &flow.name, &summary, Some(run_id), None).await;
            None
        }
    }
}

fn status_word(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    }
}

/// Records a failed attempt: retried after the policy's delay, or dead-lettered
/// (`attempts_left = Some(0)` dead-letters at once).
async fn finish_failed(
    shared: &Arc<Shared>,
    event: &Event,
    flow: &str,
    reason: &str,
    run_id: Option<String>,
    attempts_left: Option<u32>,
) {
    let delay = match attempts_left {
        Some(0) => None,
        _ => shared.config.retry.next_delay(event.attempts),
    };
    let id = event.id;
    let reason_owned = reason.to_string();
    let run = run_id.clone();
    let state = blocking(&shared.config.store, move |s| {
        s.fail(id, &reason_owned, run.as_deref(), delay)
    })
    .await;
    let dead = matches!(state, Ok(EventState::Dead));
    shared.metrics.failed(flow, dead);
    match (state, delay) {
        (Ok(_), Some(d)) => tracing::warn!(
            run = run_id.as_deref().unwrap_or("-"),
            attempt = event.attempts,
            retry_in_ms = d.as_millis() as u64,
            "{reason}"
        ),
        (Ok(_), None) => tracing::error!(
            run = run_id.as_deref().unwrap_or("-"),
            attempts = event.attempts,
            "dead letter: {reason}"
        ),
        (Err(e), _) => tracing::error!("cannot record the failure of event {id}: {e}"),
    }
}

/// The referral and CRM record a run was about: from the trigger, else from
/// the keys it wrote.
fn sides(
    project: &CompiledProject,
    trigger: &Value,
    writes: &[crate::runtime::WriteRecord],
) -> (Option<String>, Option<String>) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let mut referral = text(trigger.get("resource_id"));
    let mut crm = text(trigger.get("record_id"));
    for w in writes {
        let is_pc = project
            .connector_id(&w.connector)
            .map(|c| project.connector(c).spec.kind)
            == Some(crate::spec::connector::ConnectorKind::PartnerCenter);
        let slot = if is_pc { &mut referral } else { &mut crm };
        if slot.is_none() {
            slot.clone_from(&w.key);
        }
    }
    (referral, crm)
}

/// The service's connectors, counting requests per connector for `/metrics`.
struct Counting<'a> {
    inner: &'a dyn ConnectorSet,
    project: &'a CompiledProject,
    metrics: &'a super::metrics::Metrics,
}

impl ConnectorSet for Counting<'_> {
    fn execute<'a>(&'a self, request: Request) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        let connector = &self.project.connector(request.connector()).name;
        self.metrics.call(connector, request.action());
        self.inner.execute(request)
    }

    fn writes(&self, connector: ConnectorId, operation: &str) -> bool {
        self.inner.writes(connector, operation)
    }
}
