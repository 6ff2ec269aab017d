//! Stage 4: the interpreter. Runs a compiled flow with Power Automate semantics
//! (run-after, scopes as try blocks, terminate), bounded by a [`Budget`]. It does no
//! I/O of its own: every read and write goes through an injected [`ConnectorSet`],
//! and everything it does is reported to a [`RunObserver`].

pub mod connectors;
mod effects;
pub mod observer;
mod step;
pub mod trigger;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

pub use connectors::{BoxFuture, ConnectorError, ConnectorSet, Request};
pub use effects::{PLANNED_KEY, STALE_READ, read_field, write_field};
pub use observer::{NullObserver, RunObserver, StepError, StepRecord, SyncedPair, WriteRecord};

use crate::compile::flow::Budget;
use crate::compile::{CompiledFlow, CompiledProject};
use crate::expr::value::Scope;
use crate::spec::flow::{RunStatus, StepStatus};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Perform reads but plan writes instead of making them.
    pub dry_run: bool,
    /// Use this run id instead of a fresh UUID v7.
    pub run_id: Option<String>,
    /// Override the flow's budget.
    pub budget: Option<Budget>,
    /// Fix the clock `now()` reads (RFC 3339); tests use it for stable output.
    pub now: Option<String>,
    /// The last synced values per mapping table (from the link table): `diff`
    /// steps without a `base:` of their own merge three-way against them.
    pub bases: std::collections::BTreeMap<String, crate::mapping::Base>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Run id.
    pub run_id: String,
    /// Flow name.
    pub flow: String,
    /// Trigger variables.
    pub trigger: Value,
    /// Final status.
    pub status: RunStatus,
    /// Terminate message.
    pub message: Option<String>,
    /// Why it failed.
    pub error: Option<StepError>,
    /// Whether writes were only planned.
    pub dry_run: bool,
    /// Start time.
    pub started_at: String,
    /// Wall time.
    pub duration_ms: u64,
    /// Step outputs and variables at the end, by name, in the order first set
    /// (shared with the step records, not copied: most callers never read them).
    pub outputs: Vec<(String, Arc<Value>)>,
}

/// Why a run stops before its steps are done.
#[derive(Debug, Clone)]
enum Halt {
    /// `terminate`.
    Terminate {
        status: RunStatus,
        message: Option<String>,
    },
    /// A budget limit: fails the run, cannot be caught.
    Fatal(StepError),
}

/// A step's failure, or a halt passing through it.
#[derive(Debug)]
enum Fail {
    Step(StepError),
    Halt(Halt),
}

impl From<StepError> for Fail {
    fn from(e: StepError) -> Self {
        Fail::Step(e)
    }
}

/// Variables and outputs visible to a block of steps. Cloning one (for a nested
/// block) is cheap: the scope is shared until the clone sets something.
#[derive(Debug, Clone, Default)]
struct Frame {
    /// Step outputs and variables by name, in the order first set, as shared JSON
    /// that templates read in place.
    scope: Scope,
    ctx: Option<minijinja::Value>,
    depth: usize,
    iteration: Option<usize>,
}

impl Frame {
    fn set(&mut self, name: &str, v: Value) {
        self.set_shared(name, Arc::new(v));
    }

    fn set_shared(&mut self, name: &str, v: Arc<Value>) {
        // Dropped first, so that the scope is not shared with it and is changed
        // in place.
        self.ctx = None;
        self.scope.set_shared_json(name, v);
    }

    /// A step output or variable.
    fn get(&self, name: &str) -> Option<&Arc<Value>> {
        self.scope.get_json(name)
    }

    /// All step outputs and variables, in the order first set.
    fn outputs(&self) -> impl Iterator<Item = (&str, &Arc<Value>)> {
        self.scope.json_vars()
    }

    fn ctx(&mut self) -> minijinja::Value {
        self.ctx
            .get_or_insert_with(|| self.scope.to_value())
            .clone()
    }
}

/// Runs flows of one compiled project against a connector set.
pub struct Interpreter<'a> {
    project: &'a CompiledProject,
    connectors: &'a dyn ConnectorSet,
}

struct Exec<'a> {
    project: &'a CompiledProject,
    connectors: &'a dyn ConnectorSet,
    dry_run: bool,
    budget: Budget,
    deadline: Instant,
    steps: AtomicU64,
    calls: AtomicU64,
    iterations: AtomicU64,
    seq: AtomicUsize,
    /// The most recent step error, reported as the run's error when it fails.
    last_error: Mutex<Option<StepError>>,
    /// Every step output and variable set anywhere in the run, in the order first
    /// set, last value wins (what `cosync test` checks `outputs` against).
    published: Mutex<Vec<(String, Arc<Value>)>>,
    observer: Mutex<&'a mut dyn RunObserver>,
    /// Sync bases by mapping name.
    bases: std::collections::BTreeMap<String, crate::mapping::Base>,
}

impl<'a> Interpreter<'a> {
    /// An interpreter over `project` whose effects go to `connectors`.
    pub fn new(project: &'a CompiledProject, connectors: &'a dyn ConnectorSet) -> Interpreter<'a> {
        Interpreter {
            project,
            connectors,
        }
    }

    /// Runs `flow` once for `trigger` (the `trigger.*` variables).
    pub async fn run(
        &self,
        flow: &CompiledFlow,
        trigger: Value,
        observer: &mut dyn RunObserver,
        options: RunOptions,
    ) -> RunOutcome {
        let started = Instant::now();
        let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let run_id = options
            .run_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let budget = options.budget.unwrap_or(flow.budget);
        let exec = Exec {
            project: self.project,
            connectors: self.connectors,
            dry_run: options.dry_run,
            budget,
            deadline: started + budget.timeout,
            steps: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            iterations: AtomicU64::new(0),
            seq: AtomicUsize::new(0),
            last_error: Mutex::new(None),
            published: Mutex::new(Vec::new()),

            observer: Mutex::new(observer),
            bases: options.bases.clone(),
        };
        let mut frame = Frame::default();
        frame.set("trigger", trigger.clone());
        let now = options.now.clone().unwrap_or_else(|| {
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        });
        frame.set(
            "run",
            serde_json::json!({"id": run_id, "flow": flow.name, "started_at": started_at, "now": now, "dry_run": options.dry_run}),
        );

        let result =
            match tokio::time::timeout(budget.timeout, exec.run_steps(&flow.steps, &mut frame))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(Halt::Fatal(StepError::new(
                    "budget-exceeded",
                    format!(
                        "the run took longer than its {} s limit",
                        budget.timeout.as_secs()
                    ),
                ))),
            };
        let (status, message, error) = match result {
            Ok(StepStatus::Succeeded | StepStatus::Skipped) => (RunStatus::Succeeded, None, None),
            Ok(StepStatus::Failed | StepStatus::TimedOut) => {
                let error = exec.last_error.lock().ok().and_then(|e| e.clone());
                (RunStatus::Failed, None, error)
            }
            Err(Halt::Terminate { status, message }) => {
                let error = (status == RunStatus::Failed).then(|| {
                    StepError::new(
                        "terminated",
                        message
                            .clone()
                            .unwrap_or_else(|| "the flow terminated as failed".into()),
                    )
                });
                (status, message, error)
            }
            Err(Halt::Fatal(e)) => (RunStatus::Failed, None, Some(e)),
        };
        let mut outputs =
            std::mem::take(&mut *exec.published.lock().unwrap_or_else(|p| p.into_inner()));
        let rest: Vec<(String, Arc<Value>)> = frame
            .outputs()
            .filter(|(k, _)| !outputs.iter().any(|(p, _)| p == k))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        drop(frame);
        outputs.extend(rest);
        RunOutcome {
            run_id,
            flow: flow.name.clone(),
            trigger,
            status,
            message,
            error,
            dry_run: options.dry_run,
            started_at,
            duration_ms: started.elapsed().as_millis() as u64,
            outputs,
        }
    }
}

impl Exec<'_> {
    fn observe(&self, f: impl FnOnce(&mut dyn RunObserver)) {
        if let Ok(mut guard) = self.observer.lock() {
            f(&mut **guard);
        }
    }

    /// Sets a step output or variable in `frame` and records it for the outcome.
    fn publish(&self, frame: &mut Frame, name: &str, value: Value) {
        self.publish_shared(frame, name, Arc::new(value));
    }

    /// [`Exec::publish`] of a value shared with its step record.
    fn publish_shared(&self, frame: &mut Frame, name: &str, value: Arc<Value>) {
        if let Ok(mut all) = self.published.lock() {
            match all.iter_mut().find(|(k, _)| k == name) {
                Some((_, v)) => *v = value.clone(),
                None => all.push((name.to_string(), value.clone())),
            }
        }
        frame.set_shared(name, value);
    }

    fn count(&self, counter: &AtomicU64, limit: u64, what: &str) -> Result<(), Halt> {
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if n > limit {
            return Err(Halt::Fatal(StepError::new(
                "budget-exceeded",
                format!(
                    "the run exceeded its budget of {limit} {what} (raise `budget:` in the flow if this is expected)"
                ),
            )));
        }
        if Instant::now() > self.deadline {
            return Err(Halt::Fatal(StepError::new(
                "budget-exceeded",
                format!(
                    "the run took longer than its {} s limit",
                    self.budget.timeout.as_secs()
                ),
            )));
        }
        Ok(())
    }

    /// Runs a list of steps with run-after semantics. The result is the status of
    /// the last step that ran: a failure followed by a handler that ran is handled.
    fn run_steps<'s>(
        &'s self,
        steps: &'s [crate::compile::CompiledStep],
        frame: &'s mut Frame,
    ) -> BoxFuture<'s, Result<StepStatus, Halt>> {
        Box::pin(async move {
            let mut previous = StepStatus::Succeeded;
            let mut outcome = StepStatus::Succeeded;
            for step in steps {
                if !step.run_after.contains(&previous) {
                    self.skip(step, frame);
                    previous = StepStatus::Skipped;
                    continue;
                }
                let status = self.run_step(step, frame).await?;
                previous = status;
                outcome = status;
            }
            Ok(outcome)
        })
    }
}
