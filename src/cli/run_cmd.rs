//! `cosync run`: one flow, once, for one event; against records in memory
//! (`--fixtures`), the embedded sandbox (`sandbox: true` environments, over HTTP),
//! or an environment's real services.

use serde_json::Value;

use super::Outcome;
use super::args::{OutputFormat, RunArgs};
use super::environment::{self, Target};
use crate::record::RecordingObserver;
use crate::runtime::trigger::trigger_from_event;
use crate::runtime::{Interpreter, RunOptions};
use crate::spec::flow::{RunStatus, TriggerSpec};

fn read_event(path: &std::path::Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not valid JSON: {e}", path.display()))
}

/// Runs `cosync run`.
pub(super) fn run(args: &RunArgs, color: bool) -> Outcome {
    match run_inner(args, color) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("error: {message}");
            Outcome::Usage
        }
    }
}

fn run_inner(args: &RunArgs, color: bool) -> Result<Outcome, String> {
    let project = match super::project::load(std::slice::from_ref(&args.project), color) {
        Ok(p) => p,
        Err(o) => return Ok(o),
    };
    let Some(flow) = project.flow(&args.flow) else {
        let names: Vec<&str> = project.flows.iter().map(|f| f.name.as_str()).collect();
        return Err(format!(
            "no flow named `{}` (flows: {})",
            args.flow,
            names.join(", ")
        ));
    };
    let env_name = args
        .env
        .clone()
        .or_else(|| {
            project
                .project
                .as_ref()
                .and_then(|p| p.default_environment.clone())
        })
        .unwrap_or_else(|| "sandbox".to_string());
    let environment = project
        .project
        .as_ref()
        .map(|p| p.environments.get(&env_name));
    let is_sandbox = match environment {
        Some(Some(e)) => e.sandbox,
        Some(None) => {
            let names: Vec<&str> = project
                .project
                .iter()
                .flat_map(|p| p.environments.keys())
                .map(String::as_str)
                .collect();
            return Err(format!(
                "no environment named `{env_name}` in cosync.yaml (environments: {})",
                names.join(", ")
            ));
        }
        None => env_name == "sandbox",
    };
    let event = read_event(&args.event)?;
    let key_field = match &flow.trigger {
        Some(TriggerSpec::CrmChange(t)) => project
            .connector_id(&t.connector)
            .map(|c| project.connector(c).key_field(&t.entity)),
        _ => None,
    };
    let trigger = trigger_from_event(flow.trigger.as_ref(), event, key_field.as_deref())
        .map_err(|e| format!("{}: {e}", args.event.display()))?;
    let fixtures = args
        .fixtures
        .as_deref()
        .map(environment::read_fixtures)
        .transpose()?;
    let rt = super::project::runtime().map_err(|_| "cannot start the async runtime".to_string())?;
    rt.block_on(async {
        // `--fixtures` alone runs in memory; with an explicit sandbox `--env` it seeds
        // the sandbox instead.
        let target: Target = match (&fixtures, is_sandbox && args.env.is_some()) {
            (Some(f), false) => environment::memory(&project, f)?,

            (f, true) => environment::sandbox(&project, f.as_ref()).await?,
            (None, false) if is_sandbox => environment::sandbox(&project, None).await?,
            (None, false) => environment::live(&project, &env_name)?,
        };
        tracing::info!(target = %target.description, "running {}", flow.name);
        let mut observer = RecordingObserver::new();
        let options = RunOptions {
            dry_run: args.dry_run,
            ..Default::default()
        };
        let outcome = Interpreter::new(&project, target.set.as_ref())
            .run(flow, trigger, &mut observer, options)
            .await;
        if let Some(handle) = target.sandbox {
            handle.shutdown().await;
        }
        let record = observer.finish(&outcome);
        match args.format {
            OutputFormat::Human => print!("{}", crate::record::human(&record)),
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&record).unwrap_or_default()
            ),
        }
        Ok(match record.status {
            RunStatus::Succeeded | RunStatus::Cancelled => Outcome::Success,
            RunStatus::Failed => Outcome::Problems,
        })
    })
}
