//! `cosync test`: runs flow test files offline. Each case seeds an in-memory
//! connector set with its `given` records, runs the flow for its trigger, and
//! checks the expected writes, absent writes, status, message and step outputs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::compile::CompiledProject;
use crate::connector::memory::MemoryConnectorSet;
use crate::mapping::coerce::scalar_text;
use crate::record::{RecordingObserver, RunRecord};
use crate::runtime::observer::WriteRecord;
use crate::runtime::{Interpreter, RunOptions};
use crate::spec::flow::RunStatus;
use crate::spec::flowtest::{
    ExpectedWrite, FlowTestSpec, Given, RecordSource, TestCase, WriteAction,
};

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Test file.
    pub file: String,
    /// Suite name.
    pub suite: String,
    /// Case name.
    pub case: String,
    /// Passed.
    pub passed: bool,
    /// What did not match, one readable paragraph each.
    pub failures: Vec<String>,
    /// Wall time.
    pub duration_ms: u64,
    /// The run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRecord>,
}

/// Runs every suite of the project whose file lies under one of `only` (all when
/// empty) and whose case names contain `filter`.
pub async fn run_all(project: &CompiledProject, filter: Option<&str>) -> Vec<CaseResult> {
    let mut out = Vec::new();
    let mut suites: Vec<&(FlowTestSpec, PathBuf)> = project.tests.iter().collect();
    suites.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.test.cmp(&b.0.test)));
    for (suite, file) in suites {
        for case in &suite.cases {
            if filter.is_some_and(|f| !case.name.contains(f) && !suite.test.contains(f)) {
                continue;
            }
            out.push(run_case(project, suite, case, file).await);
        }
    }
    out
}

/// The records a `given` entry stands for: the inline record, or the JSON object or
/// array of objects in a fixture file (relative to `dir`).
pub fn source_records(source: &RecordSource, dir: &Path) -> Result<Vec<Value>, String> {
    match source {
        RecordSource::Inline(map) => Ok(vec![Value::Object(map.clone())]),
        RecordSource::File(f) => {
            let path = dir.join(&f.file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read fixture {}: {e}", path.display()))?;
            match serde_json::from_str::<Value>(&text)
                .map_err(|e| format!("fixture {} is not JSON: {e}", path.display()))?
            {
                Value::Array(items) => Ok(items),
                other => Ok(vec![other]),
            }
        }
    }
}

fn load_records(given: &Given, dir: &Path, memory: &MemoryConnectorSet) -> Result<(), String> {
    for (connector, entities) in given {
        for (entity, records) in entities {
            for source in records {
                for v in source_records(source, dir)? {
                    memory.insert(connector, entity, v)?;
                }
            }
        }
    }
    Ok(())
}

async fn run_case(
    project: &CompiledProject,
    suite: &FlowTestSpec,
    case: &TestCase,
    file: &Path,
) -> CaseResult {
    let started = Instant::now();
    let mut result = CaseResult {
        file: file.display().to_string(),
        suite: suite.test.clone(),
        case: case.name.clone(),
        passed: false,
        failures: Vec::new(),
        duration_ms: 0,
        run: None,
    };
    let Some(flow) = project.flow(&suite.flow) else {
        result
            .failures
            .push(format!("unknown flow `{}`", suite.flow));
        return result;
    };
    let memory = MemoryConnectorSet::new(project);
    let dir = file.parent().unwrap_or(Path::new("."));
    let seeded = load_records(&suite.given, dir, &memory)
        .and_then(|_| load_records(&case.given, dir, &memory))
        .and_then(|_| {
            for (connector, ops) in suite.calls.iter().chain(case.calls.iter()) {
                for (op, result) in ops {
                    memory.set_call_result(connector, op, result.clone())?;
                }
            }
            Ok(())
        });
    if let Err(e) = seeded {
        result.failures.push(e);
        return result;
    }
    let mut observer = RecordingObserver::new();
    let options = RunOptions {
        run_id: Some("test".into()),
        now: case.now.clone(),
        ..Default::default()
    };
    let outcome = Interpreter::new(project, &memory)
        .run(
            flow,
            Value::Object(case.trigger.clone()),
            &mut observer,
            options,
        )
        .await;
    let record = observer.finish(&outcome);
    result.failures = check(case, &record, &outcome.outputs);
    result.passed = result.failures.is_empty();
    result.duration_ms = started.elapsed().as_millis() as u64;
    result.run = Some(record);
    result
}

/// Loose equality for expectations: numbers and numeric text compare by value;
/// objects compare key by key; lists element by element. The expected strings
/// `~any` (any non-null value) and `~contains TEXT` are matchers.
pub fn matches(expected: &Value, actual: &Value) -> bool {
    if let Some(m) = expected.as_str() {
        if m == "~any" {
            return !actual.is_null();
        }
        if let Some(text) = m.strip_prefix("~contains ") {
            return actual.as_str().is_some_and(|a| a.contains(text));
        }
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|x| matches(v, x)))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| matches(x, y))
        }
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => false,
        _ => expected == actual || scalar_text(expected) == scalar_text(actual),
    }
}

fn action_name(a: WriteAction) -> &'static str {
    match a {
        WriteAction::Create => "create",
        WriteAction::Update => "update",
        WriteAction::Upsert => "upsert",
        WriteAction::Call => "call",
    }
}

/// A written field by name or pointer: `status` also finds a Partner Center
/// update's `/status`, and `/details/dealValue` finds a nested create's field.
fn field_of<'v>(fields: &'v Value, key: &str) -> Option<&'v Value> {
    if let Some(v) = fields.get(key) {
        return Some(v);
    }
    match key.strip_prefix('/') {
        Some(_) => fields.pointer(key),
        None => fields.get(format!("/{key}").as_str()),
    }
}

/// The leaf pointers of written (or expected) fields: keys that are pointers stay
/// as they are; nested objects are walked.
fn leaves(fields: &serde_json::Map<String, Value>) -> std::collections::BTreeSet<String> {
    fn walk(prefix: String, v: &Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    walk(
                        format!("{prefix}/{}", crate::source::escape_pointer(k)),
                        x,
                        out,
                    );
                }
            }
            _ => {
                out.insert(prefix);
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for (k, v) in fields {
        let prefix = if k.starts_with('/') {
            k.clone()
        } else {
            format!("/{}", crate::source::escape_pointer(k))
        };
        walk(prefix, v, &mut out);
    }
    out
}

/// For `exact: true`: written leaf fields that the expectation does not name.
fn unexpected_fields(e: &ExpectedWrite, w: &WriteRecord) -> Vec<String> {
    let expected: serde_json::Map<String, Value> = e
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let want = leaves(&expected);
    let got = w.fields.as_object().map(leaves).unwrap_or_default();
    got.into_iter()
        .filter(|p| {
            !want
                .iter()
                .any(|w| p == w || p.starts_with(&format!("{w}/")))
        })
        .collect()
}

fn write_matches(e: &ExpectedWrite, w: &WriteRecord) -> bool {
    w.connector == e.connector
        && w.action == action_name(e.action)
        && (e.entity.is_none() || w.entity == e.entity)
        && (e.operation.is_none() || w.operation == e.operation)
        && e.fields
            .iter()
            .all(|(k, v)| field_of(&w.fields, k).is_some_and(|a| matches(v, a)))
        && e.absent.iter().all(|k| field_of(&w.fields, k).is_none())
        && (!e.exact || unexpected_fields(e, w).is_empty())
}

fn describe_write(w: &WriteRecord) -> String {
    let target = match (&w.entity, &w.operation) {
        (Some(e), _) => format!("{}/{e}", w.connector),
        (None, Some(op)) => format!("{} {op}", w.connector),
        _ => w.connector.clone(),
    };
    format!(
        "{} {target}{}",
        w.action,
        w.key.as_ref().map(|k| format!(" {k}")).unwrap_or_default()
    )
}

fn pretty(v: &impl Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn text_diff(expected: &str, actual: &str) -> String {
    let diff = similar::TextDiff::from_lines(expected, actual);
    let mut out = String::new();
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "- ",
            similar::ChangeTag::Insert => "+ ",
            similar::ChangeTag::Equal => "  ",
        };
        out.push_str(&format!("      {sign}{change}"));
        if !change.to_string().ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

fn check(
    case: &TestCase,
    record: &RunRecord,
    outputs: &[(String, std::sync::Arc<Value>)],
) -> Vec<String> {
    let mut failures = Vec::new();
    let expect = &case.expect;
    let want = expect.status.unwrap_or(RunStatus::Succeeded);
    if record.status != want {
        let why = record
            .error
            .as_ref()
            .map(|e| format!(" — [{}] {}", e.code, e.message))
            .unwrap_or_default();
        failures.push(format!(
            "status: expected {}, got {}{why}",
            status_name(want),
            status_name(record.status)
        ));
    }
    if let Some(m) = &expect.message {
        let message = record.message.clone().unwrap_or_default();
        let error = record
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        let text = if error.is_empty() || error == message {
            message
        } else {
            format!("{message} {error}")
        };

        if !text.contains(m.as_str()) {
            failures.push(format!(
                "message: expected it to contain {m:?}, got {:?}",
                text.trim()
            ));
        }
    }
    let writes: Vec<&WriteRecord> = record.writes.iter().filter(|w| !w.planned).collect();
    let mut next = 0;
    for e in &expect.writes {
        match writes[next..].iter().position(|w| write_matches(e, w)) {
            Some(i) => next += i + 1,
            None => {
                let mut msg = format!(
                    "expected write not found: {} {}/{}",
                    action_name(e.action),
                    e.connector,
                    e.entity
                        .as_deref()
                        .or(e.operation.as_deref())
                        .unwrap_or("?")
                );
                let similar_write = writes.iter().find(|w| {
                    w.connector == e.connector
                        && w.action == action_name(e.action)
                        && (e.entity.is_none() || w.entity == e.entity)
                });
                match similar_write {
                    Some(w) => {
                        let expected_fields = pretty(&e.fields);
                        let actual: serde_json::Map<String, Value> = e
                            .fields
                            .keys()
                            .map(|k| {
                                (
                                    k.clone(),
                                    field_of(&w.fields, k).cloned().unwrap_or(Value::Null),
                                )
                            })
                            .collect();
                        msg.push_str(&format!(
                            "\n    closest: {} — fields (- expected, + actual):\n{}",
                            describe_write(w),
                            text_diff(&expected_fields, &pretty(&actual))
                        ));
                        let written: Vec<&String> = e
                            .absent
                            .iter()
                            .filter(|k| field_of(&w.fields, k).is_some())
                            .collect();
                        if !written.is_empty() {
                            let names: Vec<String> =
                                written.iter().map(|k| format!("`{k}`")).collect();
                            msg.push_str(&format!(
                                "\n    it writes {} (expected absent)",
                                names.join(", ")
                            ));
                        }
                        if e.exact {
                            let extra = unexpected_fields(e, w);
                            if !extra.is_empty() {
                                msg.push_str(&format!(
                                    "\n    it also writes {} (exact: true)",
                                    extra.join(", ")
                                ));
                            }
                        }
                    }
                    None if writes.is_empty() => msg.push_str("\n    the run made no writes"),
                    None => {
                        msg.push_str("\n    writes made:");
                        for w in &writes {
                            msg.push_str(&format!("\n      {}", describe_write(w)));
                        }
                    }
                }
                failures.push(msg);
            }
        }
    }
    for c in &expect.no_writes {
        let bad: Vec<String> = writes
            .iter()
            .filter(|w| &w.connector == c)
            .map(|w| format!("{}\n{}", describe_write(w), indent(&pretty(&w.fields), 6)))
            .collect();
        if !bad.is_empty() {
            failures.push(format!(
                "expected no writes to {c}, got:\n    {}",
                bad.join("\n    ")
            ));
        }
    }
    for (id, want) in &expect.outputs {
        let got = outputs
            .iter()
            .find(|(k, _)| k == id)
            .map_or(Value::Null, |(_, v)| (**v).clone());
        if !matches(want, &got) {
            failures.push(format!(
                "output of `{id}` (- expected, + actual):\n{}",
                text_diff(&pretty(want), &pretty(&got))
            ));
        }
    }
    failures
}

fn indent(s: &str, n: usize) -> String {
    s.lines()
        .map(|l| format!("{}{l}", " ".repeat(n)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn status_name(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    }
}

/// Human report of case results.
pub fn human(results: &[CaseResult]) -> String {
    let mut out = String::new();
    let mut last_file = "";
    for r in results {
        if r.file != last_file {
            out.push_str(&format!("{}\n", r.file));
            last_file = &r.file;
        }
        out.push_str(&format!(
            "  {} {} ({} ms)\n",
            if r.passed { "✓" } else { "✗" },
            r.case,
            r.duration_ms
        ));
        for f in &r.failures {
            out.push_str(&format!("      {}\n", f.replace('\n', "\n      ")));
        }
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    out.push_str(&format!(
        "{} passed, {failed} failed\n",
        results.len() - failed
    ));
    out
}
