//! Stage 5: the run record — run id, flow, trigger, status and every step with its
//! inputs, outputs, duration and error — with secrets and tokens redacted. Its JSON
//! form is stable.

pub mod redact;
mod render;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use render::human;

use crate::runtime::RunOutcome;
use crate::runtime::observer::{CallRecord, RunObserver, StepError, StepRecord, WriteRecord};
use crate::spec::flow::RunStatus;

/// Everything about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique id (UUID v7: sortable by time).
    pub run_id: String,
    /// Flow name.
    pub flow: String,
    /// The trigger's variables.
    pub trigger: Value,
    /// How the run ended.
    pub status: RunStatus,
    /// The terminate message, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// A dry run plans writes without making them.
    pub dry_run: bool,
    /// Start time (RFC 3339, UTC).
    pub started_at: String,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Steps in execution order.
    pub steps: Vec<StepRecord>,
    /// Writes made or planned.
    pub writes: Vec<WriteRecord>,
    /// Connector requests.
    pub calls: Vec<CallRecord>,
}

/// Collects a run record; secrets are redacted as records arrive.
#[derive(Debug, Default)]
pub struct RecordingObserver {
    steps: Vec<StepRecord>,
    writes: Vec<WriteRecord>,
    calls: Vec<CallRecord>,
}

impl RecordingObserver {
    /// A new, empty recorder.
    pub fn new() -> RecordingObserver {
        RecordingObserver::default()
    }

    /// The writes seen so far.
    pub fn writes(&self) -> &[WriteRecord] {
        &self.writes
    }

    /// Builds the record of a finished run.
    pub fn finish(mut self, outcome: &RunOutcome) -> RunRecord {
        self.steps.sort_by_key(|s| s.seq);
        RunRecord {
            run_id: outcome.run_id.clone(),
            flow: outcome.flow.clone(),
            trigger: redact::redact(&outcome.trigger),
            status: outcome.status,
            message: outcome.message.as_deref().map(redact::redact_text),
            error: outcome.error.clone().map(|e| StepError {
                message: redact::redact_text(&e.message),
                ..e
            }),
            dry_run: outcome.dry_run,
            started_at: outcome.started_at.clone(),
            duration_ms: outcome.duration_ms,
            steps: self.steps,
            writes: self.writes,
            calls: self.calls,
        }
    }
}

impl RunObserver for RecordingObserver {
    fn step(&mut self, mut record: StepRecord) {
        redact::redact_in_place(&mut record.inputs);
        redact::redact_shared(&mut record.output);
        if let Some(e) = &mut record.error {
            e.message = redact::redact_text(&e.message);
        }
        self.steps.push(record);
    }

    fn write(&mut self, mut record: WriteRecord) {
        redact::redact_in_place(&mut record.fields);
        if let Some(b) = &mut record.before {
            redact::redact_in_place(b);
        }
        self.writes.push(record);
    }

    fn call(&mut self, record: CallRecord) {
        self.calls.push(record);
    }
}
