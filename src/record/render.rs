//! The human form of a run record: a step tree with statuses and times, then the
//! writes as a per-field plan (like `terraform plan`).

use serde_json::Value;

use super::RunRecord;
use crate::spec::flow::{RunStatus, StepStatus};

fn status_mark(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Succeeded => "✓",
        StepStatus::Failed => "✗",
        StepStatus::Skipped => "-",
        StepStatus::TimedOut => "⏱",
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(79).collect::<String>())
    } else {
        s
    }
}

/// Renders a run record for people.
pub fn human(record: &RunRecord) -> String {
    let status = match record.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    };
    let mut out = format!(
        "run {} · flow {} · {}{} in {} ms\n",
        record.run_id,
        record.flow,
        status,
        if record.dry_run { " (dry run)" } else { "" },
        record.duration_ms
    );
    if let Some(m) = &record.message {
        out.push_str(&format!("  message: {m}\n"));
    }
    if let Some(e) = &record.error {
        out.push_str(&format!("  error [{}]: {}\n", e.code, e.message));
    }
    out.push_str("steps:\n");
    for s in &record.steps {
        let indent = "  ".repeat(s.depth + 1);
        let iteration = s.iteration.map(|i| format!(" [{i}]")).unwrap_or_default();
        let label = if s.name.starts_with(&format!("{} ", s.kind)) {
            s.name.clone()
        } else {
            format!("{} {}", s.kind, s.name)
        };
        out.push_str(&format!(
            "{indent}{} {label}{iteration}",
            status_mark(s.status)
        ));
        if s.status != StepStatus::Skipped {
            out.push_str(&format!("  ({} ms)", s.duration_ms));
        }
        out.push('\n');
        if let Some(e) = &s.error {
            out.push_str(&format!("{indent}    error [{}]: {}\n", e.code, e.message));
        }
    }
    if record.writes.is_empty() {
        out.push_str(if record.dry_run {
            "no writes planned\n"
        } else {
            "no writes\n"
        });
        return out;
    }
    out.push_str(if record.dry_run {
        "planned writes:\n"
    } else {
        "writes:\n"
    });
    for w in &record.writes {
        let (mark, what) = match w.action.as_str() {
            "create" => (
                "+",
                format!(
                    "create {}/{}",
                    w.connector,
                    w.entity.as_deref().unwrap_or("?")
                ),
            ),
            "update" => (
                "~",
                format!(
                    "update {}/{} {}",
                    w.connector,
                    w.entity.as_deref().unwrap_or("?"),
                    w.key.as_deref().unwrap_or("")
                ),
            ),
            "upsert" => (
                "±",
                format!(
                    "upsert {}/{} {}",
                    w.connector,
                    w.entity.as_deref().unwrap_or("?"),
                    w.key.as_deref().unwrap_or("")
                ),
            ),
            _ => (
                "→",
                format!(
                    "call {} {}",
                    w.connector,
                    w.operation.as_deref().unwrap_or("?")
                ),
            ),
        };
        out.push_str(&format!("  {mark} {what}   (step {})\n", w.step));
        if let Value::Object(fields) = &w.fields {
            for (k, v) in fields {
                match w.before.as_ref().and_then(|b| b.get(k)) {
                    Some(old) => {
                        out.push_str(&format!("      {k}: {} → {}\n", short(old), short(v)))
                    }
                    None => out.push_str(&format!("      {k}: {}\n", short(v))),
                }
            }
        }
    }
    out
}
