//! `cosync run`.

use serde_json::Value;

use super::Outcome;
use super::args::{OutputFormat, RunArgs};
use crate::connector::memory::MemoryConnectorSet;
use crate::record::RecordingObserver;
use crate::runtime::trigger::trigger_from_event;
use crate::runtime::{Interpreter, RunOptions};
use crate::spec::flow::{RunStatus, TriggerSpec};
use crate::spec::flowtest::Given;

fn read_event(path: &std::path::Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not valid JSON: {e}", path.display()))
}

fn read_fixtures(path: &std::path::Path) -> Result<Given, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let value = crate::source::parse_yaml(&text).map_err(|d| {
        d.first()
            .map(|d| {
                format!(
                    "{}:{}: {}",
                    path.display(),
                    d.span.map_or(0, |s| s.start.line),
                    d.message
                )
            })
            .unwrap_or_default()
    })?;
    serde_json::from_value(value.value).map_err(|e| {
        format!(
            "{}: expected `connector: {{ entity: [records] }}`: {e}",
            path.display()
        )
    })
}

/// Runs `cosync run`.
pub(super) fn run(args: &RunArgs, color: bool) -> Outcome {
    let project = match super::project::load(std::slice::from_ref(&args.project), color) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let Some(flow) = project.flow(&args.flow) else {
        let names: Vec<&str> = project.flows.iter().map(|f| f.name.as_str()).collect();
        eprintln!(
            "error: no flow named `{}` (flows: {})",
            args.flow,
            names.join(", ")
        );
        return Outcome::Usage;
    };
    if let (Some(env), Some(spec)) = (&args.env, &project.project)
        && !spec.environments.contains_key(env)
    {
        let names: Vec<&str> = spec.environments.keys().map(String::as_str).collect();
        eprintln!(
            "error: no environment named `{env}` in cosync.yaml (environments: {})",
            names.join(", ")
        );
        return Outcome::Usage;
    }
    let Some(fixtures) = &args.fixtures else {
        eprintln!(
            "error: running against live services is not available yet; pass --fixtures FILE to run against records in memory"
        );
        return Outcome::Usage;
    };
    let event = match read_event(&args.event) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Usage;
        }
    };
    let key_field = match &flow.trigger {
        Some(TriggerSpec::CrmChange(t)) => project
            .connector_id(&t.connector)
            .map(|c| project.connector(c).key_field(&t.entity)),
        _ => None,
    };
    let trigger = match trigger_from_event(flow.trigger.as_ref(), event, key_field.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", args.event.display());
            return Outcome::Usage;
        }
    };
    let memory = MemoryConnectorSet::new(&project);
    let given = match read_fixtures(fixtures) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Usage;
        }
    };
    for (connector, entities) in &given {
        for (entity, records) in entities {
            for r in records {
                let value = match r {
                    crate::spec::flowtest::RecordSource::Inline(m) => Value::Object(m.clone()),
                    crate::spec::flowtest::RecordSource::File(f) => {
                        let path = fixtures
                            .parent()
                            .unwrap_or(std::path::Path::new("."))
                            .join(&f.file);
                        match read_event(&path) {
                            Ok(v) => v,
                            Err(e) => {
                                eprintln!("error: {e}");
                                return Outcome::Usage;
                            }
                        }
                    }
                };
                if let Err(e) = memory.insert(connector, entity, value) {
                    eprintln!("error: {}: {e}", fixtures.display());
                    return Outcome::Usage;
                }
            }
        }
    }
    let rt = match super::project::runtime() {
        Ok(rt) => rt,
        Err(o) => return o,
    };
    let mut observer = RecordingObserver::new();
    let options = RunOptions {
        dry_run: args.dry_run,
        ..Default::default()
    };
    let outcome =
        rt.block_on(Interpreter::new(&project, &memory).run(flow, trigger, &mut observer, options));
    let record = observer.finish(&outcome);
    match args.format {
        OutputFormat::Human => print!("{}", crate::record::human(&record)),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&record).unwrap_or_default()
        ),
    }
    match record.status {
        RunStatus::Succeeded | RunStatus::Cancelled => Outcome::Success,
        RunStatus::Failed => Outcome::Problems,
    }
}
