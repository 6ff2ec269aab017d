//! The report of `cosync sync --full`: per flow, the records created, updated
//! (with the per-field changes written or, in a dry run, planned), unchanged,
//! cancelled (with the flow's message) and failed (with the error); as text or
//! JSON.

use serde::Serialize;
use serde_json::Value;

use crate::record::RunRecord;
use crate::runtime::WriteRecord;
use crate::spec::flow::RunStatus;

/// Which way a flow writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Direction {
    /// Partner Center webhook flows.
    PartnerCenterToCrm,
    /// CRM change flows.
    CrmToPartnerCenter,
}

/// Records read from one source.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Source {
    /// `connector/entity`.
    pub what: String,
    /// How many records were listed.
    pub records: usize,
    /// Why listing failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One field written or planned.
#[derive(Debug, Clone, Serialize)]
pub(super) struct FieldChange {
    field: String,
    /// The value before (updates in a dry run, where it was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<Value>,
    after: Value,
}

/// One write of a run.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Write {
    connector: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity: Option<String>,
    action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    planned: bool,
    changes: Vec<FieldChange>,
}

/// One run in the report.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Entry {
    record: String,
    run_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    writes: Vec<Write>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    conflicts: Vec<Value>,
}

/// The runs of one flow.
#[derive(Debug, Clone, Serialize)]
pub(super) struct FlowReport {
    flow: String,
    direction: Direction,
    created: Vec<Entry>,
    updated: Vec<Entry>,
    unchanged: Vec<Entry>,
    cancelled: Vec<Entry>,
    failed: Vec<Entry>,
}

/// Counts over every flow.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct Totals {
    runs: usize,
    created: usize,
    updated: usize,
    unchanged: usize,
    cancelled: usize,
    failed: usize,
    conflicts: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Report {
    dry_run: bool,
    environment: String,
    sources: Vec<Source>,
    flows: Vec<FlowReport>,
    totals: Totals,
}

impl Report {
    /// A report of `runs` (each with the record it was for), grouped by flow in
    /// `flow_order`.
    pub(super) fn new(
        dry_run: bool,
        environment: String,
        sources: Vec<Source>,
        flow_order: &[(String, Direction)],
        runs: Vec<(String, RunRecord)>,
    ) -> Report {
        let mut flows: Vec<FlowReport> = flow_order
            .iter()
            .map(|(flow, direction)| FlowReport {
                flow: flow.clone(),
                direction: *direction,
                created: Vec::new(),
                updated: Vec::new(),
                unchanged: Vec::new(),
                cancelled: Vec::new(),
                failed: Vec::new(),
            })
            .collect();
        let mut totals = Totals::default();
        for (record, run) in runs {
            let Some(f) = flows.iter_mut().find(|f| f.flow == run.flow) else {
                continue;
            };
            totals.runs += 1;
            let entry = Entry {
                record,
                run_id: run.run_id.clone(),
                message: match (&run.status, &run.error, &run.message) {
                    (RunStatus::Failed, Some(e), _) => Some(format!("[{}] {}", e.code, e.message)),
                    (_, _, m) => m.clone(),
                },
                writes: run.writes.iter().map(write).collect(),
                conflicts: conflicts(&run),
            };
            totals.conflicts += entry.conflicts.len();
            let bucket = match run.status {
                RunStatus::Failed => &mut f.failed,
                RunStatus::Cancelled => &mut f.cancelled,
                RunStatus::Succeeded if run.writes.iter().any(|w| w.action == "create") => {
                    &mut f.created
                }
                RunStatus::Succeeded if !run.writes.is_empty() => &mut f.updated,
                RunStatus::Succeeded => &mut f.unchanged,
            };
            bucket.push(entry);
        }
        for f in &mut flows {
            for bucket in [
                &mut f.created,
                &mut f.updated,
                &mut f.unchanged,
                &mut f.cancelled,
                &mut f.failed,
            ] {
                bucket.sort_by(|a, b| a.record.cmp(&b.record));
            }
            totals.created += f.created.len();
            totals.updated += f.updated.len();
            totals.unchanged += f.unchanged.len();
            totals.cancelled += f.cancelled.len();
            totals.failed += f.failed.len();
        }
        Report {
            dry_run,
            environment,
            sources,
            flows,
            totals,
        }
    }

    /// True when a run failed or a source could not be listed.
    pub(super) fn has_failures(&self) -> bool {
        self.totals.failed > 0 || self.sources.iter().any(|s| s.error.is_some())
    }

    /// The report for people.
    pub(super) fn human(&self) -> String {
        let (created, updated) = if self.dry_run {
            ("would be created", "would be updated")
        } else {
            ("created", "updated")
        };
        let sources: Vec<String> = self
            .sources
            .iter()
            .map(|s| match &s.error {
                Some(_) => format!("{} (listing failed)", s.what),
                None => format!("{} {}", s.records, s.what),
            })
            .collect();
        let mut out = format!(
            "sync --full{} on `{}`: {} → {} run{}\n",
            if self.dry_run { " (dry run)" } else { "" },
            self.environment,
            if sources.is_empty() {
                "no sources".to_string()
            } else {
                sources.join(", ")
            },
            self.totals.runs,
            if self.totals.runs == 1 { "" } else { "s" }
        );
        for s in &self.sources {
            if let Some(e) = &s.error {
                out.push_str(&format!("error: listing {} failed: {e}\n", s.what));
            }
        }
        for f in self.flows.iter().filter(|f| runs_of(f) > 0) {
            let arrow = match f.direction {
                Direction::PartnerCenterToCrm => "Partner Center → CRM",
                Direction::CrmToPartnerCenter => "CRM → Partner Center",
            };
            out.push_str(&format!(
                "\n{} ({arrow}): {} run{}\n",
                f.flow,
                runs_of(f),
                if runs_of(f) == 1 { "" } else { "s" }
            ));
            for (label, mark, bucket) in [(created, "+", &f.created), (updated, "~", &f.updated)] {
                for e in bucket {
                    out.push_str(&format!(
                        "  {mark} {} {label}{}\n",
                        e.record,
                        run_ref(self, e)
                    ));
                    render_writes(&mut out, e);
                }
            }
            if !f.unchanged.is_empty() {
                let ids: Vec<&str> = f.unchanged.iter().map(|e| e.record.as_str()).collect();
                let shown = ids.iter().take(20).copied().collect::<Vec<_>>().join(", ");
                let more = ids.len().saturating_sub(20);
                out.push_str(&format!(
                    "  = unchanged ({}): {shown}{}\n",
                    ids.len(),
                    if more > 0 {
                        format!(" … and {more} more")
                    } else {
                        String::new()
                    }
                ));
            }
            for e in &f.cancelled {
                out.push_str(&format!(
                    "  - {} cancelled: {}\n",
                    e.record,
                    e.message.as_deref().unwrap_or("(no message)")
                ));
            }
            for e in &f.failed {
                out.push_str(&format!(
                    "  ✗ {} failed{}: {}\n",
                    e.record,
                    run_ref(self, e),
                    e.message.as_deref().unwrap_or("(no error)")
                ));
                render_writes(&mut out, e);
            }
        }
        let t = &self.totals;
        out.push_str(&format!(
            "\n{} {created} · {} {updated} · {} unchanged · {} cancelled · {} failed{}\n",
            t.created,
            t.updated,
            t.unchanged,
            t.cancelled,
            t.failed,
            if t.conflicts > 0 {
                format!(" · {} conflicting field(s)", t.conflicts)
            } else {
                String::new()
            }
        ));
        out.push_str(if self.dry_run {
            "dry run: nothing was written\n"
        } else {
            "runs stored: `cosync runs list` / `cosync runs show RUN`\n"
        });
        out
    }
}

fn runs_of(f: &FlowReport) -> usize {
    f.created.len() + f.updated.len() + f.unchanged.len() + f.cancelled.len() + f.failed.len()
}

/// ` (run ID)` for stored runs; nothing in a dry run (its runs are not stored).
fn run_ref(report: &Report, e: &Entry) -> String {
    if report.dry_run {
        String::new()
    } else {
        format!(" (run {})", e.run_id)
    }
}

fn render_writes(out: &mut String, e: &Entry) {
    for w in &e.writes {
        let target = match (&w.entity, &w.operation) {
            (Some(entity), _) => format!("{}/{entity}", w.connector),
            (None, Some(op)) => format!("{} {op}", w.connector),
            (None, None) => w.connector.clone(),
        };
        out.push_str(&format!(
            "      {} {target}{}\n",
            w.action,
            w.key
                .as_deref()
                .map(|k| format!(" {k}"))
                .unwrap_or_default()
        ));
        for c in &w.changes {
            match &c.before {
                Some(b) => out.push_str(&format!(
                    "          {}: {} → {}\n",
                    c.field,
                    short(b),
                    short(&c.after)
                )),
                None => out.push_str(&format!("          {}: {}\n", c.field, short(&c.after))),
            }
        }
    }
    for c in &e.conflicts {
        out.push_str(&format!("      ! conflict: {}\n", short(c)));
    }
}

fn short(v: &Value) -> String {
    super::table::cell(&v.to_string(), 80)
}

fn write(w: &WriteRecord) -> Write {
    let before = w.before.as_ref().and_then(Value::as_object);
    let changes = match &w.fields {
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| FieldChange {
                field: k.clone(),
                before: before.and_then(|b| b.get(k)).cloned(),
                after: v.clone(),
            })
            .collect(),
        Value::Null => Vec::new(),
        other => vec![FieldChange {
            field: "(value)".into(),
            before: None,
            after: other.clone(),
        }],
    };
    Write {
        connector: w.connector.clone(),
        entity: w.entity.clone(),
        action: w.action.clone(),
        operation: w.operation.clone(),
        key: w.key.clone(),
        planned: w.planned,
        changes,
    }
}

/// Conflicting rows reported by merge steps (`detail.conflicts`).
fn conflicts(run: &RunRecord) -> Vec<Value> {
    run.steps
        .iter()
        .filter_map(|s| s.detail.as_ref()?.get("conflicts")?.as_array().cloned())
        .flatten()
        .collect()
}
