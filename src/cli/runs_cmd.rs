//! `cosync runs list|show`: the run history that `cosync serve` and
//! `cosync sync --full` store, newest first, and one run's full record.

use serde_json::json;

use super::Outcome;
use super::args::{OutputFormat, RunsCommand, RunsListArgs, RunsShowArgs};
use super::service_setup;
use super::table;
use crate::record::RunRecord;

/// Runs a `cosync runs` subcommand.
pub(super) fn run(command: &RunsCommand, color: bool) -> Outcome {
    match command {
        RunsCommand::List(a) => list(a, color),
        RunsCommand::Show(a) => show(a, color),
    }
}

fn list(args: &RunsListArgs, color: bool) -> Outcome {
    let store = match service_setup::open_existing_state(&args.target, color) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let runs = match store.runs(args.limit) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Usage;
        }
    };
    match args.format {
        OutputFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "runs": runs })).unwrap_or_default()
            );
        }
        OutputFormat::Human if runs.is_empty() => println!("no runs stored yet"),
        OutputFormat::Human => {
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        r.run_id.clone(),
                        r.flow.clone(),
                        r.status.clone(),
                        table::time(&r.started_at),
                        table::duration(r.duration_ms),
                        r.event_id
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &[
                        "RUN",
                        "FLOW",
                        "STATUS",
                        "STARTED (UTC)",
                        "DURATION",
                        "EVENT"
                    ],
                    &rows
                )
            );
            println!(
                "{} run{} (newest first; `cosync runs show RUN` for one run's steps)",
                runs.len(),
                if runs.len() == 1 { "" } else { "s" }
            );
        }
    }
    Outcome::Success
}

fn show(args: &RunsShowArgs, color: bool) -> Outcome {
    let store = match service_setup::open_existing_state(&args.target, color) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let stored = match store.run(&args.id) {
        Ok(Some(v)) => v,
        Ok(None) => {
            eprintln!(
                "error: no run `{}` in the history (`cosync runs list` shows the stored runs)",
                args.id
            );
            return Outcome::Problems;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Usage;
        }
    };
    match args.format {
        OutputFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&stored).unwrap_or_default()
            );
        }
        OutputFormat::Human => match serde_json::from_value::<RunRecord>(stored.clone()) {
            Ok(record) => print!("{}", crate::record::human(&record)),
            Err(e) => {
                // A record stored by another version of cosync: show it as it is.
                eprintln!(
                    "warning: the stored record has an unexpected shape ({e}); shown as JSON"
                );
                println!(
                    "{}",
                    serde_json::to_string_pretty(&stored).unwrap_or_default()
                );
            }
        },
    }
    Outcome::Success
}
