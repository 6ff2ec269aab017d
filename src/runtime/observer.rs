//! What the interpreter reports while it runs. The run record, the CLI's progress
//! output and test assertions are all observers.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::flow::StepStatus;

fn is_null(v: &Arc<Value>) -> bool {
    v.is_null()
}

/// An error of a step or run, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// Stable code: `connector`, `not-found`, `conflict`, `template`, `mapping`,
    /// `type`, `budget-exceeded`, `timeout`, `terminated`.
    pub code: String,
    /// What happened.
    pub message: String,
}

impl StepError {
    /// A new error.
    pub fn new(code: &str, message: impl Into<String>) -> StepError {
        StepError {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// What one executed (or skipped) step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Start order within the run (records sort by it).
    pub seq: usize,
    /// Pre-order index of the step in its flow.
    pub index: usize,
    /// The step's output name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name.
    pub name: String,
    /// Kind key.
    pub kind: String,
    /// Nesting depth (0 = top level).
    pub depth: usize,
    /// Loop iteration, inside `foreach` / `until`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iteration: Option<usize>,
    /// How it ended.
    pub status: StepStatus,
    /// Evaluated inputs.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub inputs: Value,
    /// Output, shared with the run's variables (not copied per record).
    #[serde(default, skip_serializing_if = "is_null")]
    pub output: Arc<Value>,
    /// Extra detail: a diff's field changes, a merge's conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// One write sent (or, in a dry run, planned) to a connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// The step that wrote.
    pub step: String,
    /// Connector name.
    pub connector: String,
    /// Entity, for record writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// `create`, `update`, `upsert` or `call`.
    pub action: String,
    /// Operation, for calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Record key, for updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The fields (or call inputs) written.
    pub fields: Value,
    /// The values before the write, where read (dry runs read them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// True when the write was only planned (`--dry-run`).
    pub planned: bool,
}

/// One connector request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The step that made it.
    pub step: String,
    /// Connector name.
    pub connector: String,
    /// Action (`get`, `find`, ...).
    pub action: String,
    /// Entity or operation.
    pub target: String,
    /// Succeeded.
    pub ok: bool,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// Receives reports from the interpreter.
pub trait RunObserver: Send {
    /// A step finished (or was skipped).
    fn step(&mut self, record: StepRecord);
    /// A write was made or planned.
    fn write(&mut self, record: WriteRecord);
    /// A connector request completed.
    fn call(&mut self, _record: CallRecord) {}
    /// A `diff` step compared a referral with a CRM record: the sync base to keep
    /// if the run succeeds, and the rows parked as conflicts.
    fn synced(&mut self, _pair: SyncedPair) {}
}

/// What a `diff` step learnt about one linked pair of records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncedPair {
    /// The mapping table.
    pub mapping: String,
    /// The referral's id, if it has one yet.
    pub referral_id: Option<String>,
    /// The CRM record's id, if it has one yet.
    pub crm_id: Option<String>,
    /// The last synced values once the planned changes are written.
    pub base: crate::mapping::Base,
    /// Rows changed on both sides with policy `manual`.
    pub conflicts: Vec<crate::mapping::Conflict>,
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct NullObserver;

impl RunObserver for NullObserver {
    fn step(&mut self, _: StepRecord) {}
    fn write(&mut self, _: WriteRecord) {}
}
