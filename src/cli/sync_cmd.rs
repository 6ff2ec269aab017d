//! `cosync sync --full [--dry-run]`: reconciles everything, both directions.
//!
//! Every referral (Partner Center `list_referrals`, all pages) runs through every
//! enabled Partner Center → CRM flow, as a `referral-updated` event would; then
//! every CRM record each polled `crm_change` trigger watches (`modified_since`
//! with no `since`, the trigger's `where` filter) runs through its CRM → Partner
//! Center flows, as a polled change would. The records are listed first, so the
//! second pass does not see what the first one created. Runs of one record are
//! sequential; records run in parallel (`server.workers`).
//!
//! Without `--dry-run` the runs are stored in the state (`cosync runs`) with an
//! audit line each, like the service's. With it, writes are only planned, the
//! state is not opened, and the report shows what would change.

use std::io::IsTerminal;
use std::sync::Arc;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use super::Outcome;
use super::args::{OutputFormat, SyncArgs};
use super::service_setup::{self, Opened};
use super::sync_report::{Direction, Report, Source};
use crate::record::RunRecord;
use crate::runtime::trigger::trigger_from_event;
use crate::runtime::{ConnectorSet, Interpreter, Request, RunOptions, SyncedPair};
use crate::service::dispatch;
use crate::service::links::{self, PairObserver};
use crate::spec::flow::{ChangeKind, RunStatus};
use crate::store::{AuditEntry, Store};

/// One run to make: a flow for one record.
#[derive(Debug, Clone)]
struct Item {
    flow: String,
    /// The record as shown in the report (referral id or CRM record id).
    record: String,
    /// Runs with the same key are made one after the other.
    record_key: String,
    trigger: Value,
}

/// Runs `cosync sync`.
pub(super) fn run(args: &SyncArgs, color: bool) -> Outcome {
    if !args.full {
        eprintln!(
            "error: pass --full: `cosync sync --full` reconciles every record (the only mode)"
        );
        return Outcome::Usage;
    }
    let project = match service_setup::load(&args.target, color) {
        Ok(p) => p,
        Err(o) => return o,
    };
    // A dry run reads the links of an existing state file (so that its report
    // merges three-way like the service would) but never creates or writes one.
    let state = service_setup::state_path(&project, &args.target);
    let store = if args.dry_run {
        if state.exists() {
            match service_setup::open_store(&state) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Outcome::Usage;
                }
            }
        } else {
            None
        }
    } else {
        match service_setup::open_store(&state) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: {e}");
                return Outcome::Usage;
            }
        }
    };
    let runtime = match super::project::runtime() {
        Ok(r) => r,
        Err(o) => return o,
    };
    runtime.block_on(async {
        let opened = match service_setup::open(project, &args.target).await {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                return Outcome::Usage;
            }
        };
        let report = sync(&opened, store, args.dry_run).await;
        if let Some(s) = opened.sandbox {
            s.shutdown().await;
        }
        match args.format {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            ),
            OutputFormat::Human => print!("{}", report.human()),
        }
        if report.has_failures() {
            Outcome::Problems
        } else {
            Outcome::Success
        }
    })
}

async fn sync(opened: &Opened, store: Option<Arc<Store>>, dry_run: bool) -> Report {
    let project = &opened.project;
    let mut sources = Vec::new();
    let mut flow_order: Vec<(String, Direction)> = Vec::new();
    // Partner Center → CRM.
    let pc_flows = dispatch::partner_center_flows(project, "referral-updated");
    let mut first: Vec<Item> = Vec::new();
    if !pc_flows.is_empty() {
        flow_order.extend(
            pc_flows
                .iter()
                .map(|f| (f.to_string(), Direction::PartnerCenterToCrm)),
        );
        let listed = super::webhooks_cmd::call(opened, "list_referrals", json!({})).await;
        let (ids, error) = match listed {
            Ok(v) => (
                ids_of(v.as_array().map(Vec::as_slice).unwrap_or_default()),
                None,
            ),
            Err(e) => (Vec::new(), Some(e)),
        };
        sources.push(Source {
            what: "partner_center/referral".into(),
            records: ids.len(),
            error,
        });
        for id in &ids {
            let event = json!({
                "EventName": "referral-updated",
                "ResourceUri": format!("https://api.partner.microsoft.com/engagements/v1/referrals/{id}"),
                "ResourceName": "referral",
            });
            for flow in &pc_flows {
                let Some(f) = project.flow(flow) else {
                    continue;
                };
                match trigger_from_event(f.trigger.as_ref(), event.clone(), None) {
                    Ok(trigger) => first.push(Item {
                        flow: flow.to_string(),
                        record: id.clone(),
                        record_key: format!("referral:{id}"),
                        trigger,
                    }),
                    Err(e) => eprintln!("warning: {flow}: referral {id} skipped: {e}"),
                }
            }
        }
    }
    // CRM → Partner Center.
    let mut second: Vec<Item> = Vec::new();
    for w in dispatch::watches(project) {
        let flows: Vec<String> = w
            .flows
            .iter()
            .filter(|(_, kinds)| kinds.contains(&ChangeKind::Updated))
            .map(|(f, _)| f.clone())
            .collect();
        if flows.is_empty() {
            continue;
        }
        for f in &flows {
            if !flow_order.iter().any(|(n, _)| n == f) {
                flow_order.push((f.clone(), Direction::CrmToPartnerCenter));
            }
        }
        let (ids, error) = match modified(opened, &w).await {
            Ok(ids) => (ids, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        sources.push(Source {
            what: format!("{}/{}", w.connector, w.entity),
            records: ids.len(),
            error,
        });
        for id in ids {
            for flow in &flows {
                second.push(Item {
                    flow: flow.clone(),
                    record: id.clone(),
                    record_key: format!("{}:{}:{id}", w.connector, w.entity),
                    trigger: json!({"record_id": id, "record": {}, "change": "updated"}),
                });
            }
        }
    }
    let bar = progress(first.len() + second.len());
    let workers = project
        .project
        .as_ref()
        .and_then(|p| p.server.as_ref())
        .and_then(|s| s.workers)
        .unwrap_or(4)
        .clamp(1, 64) as usize;
    let mut runs = run_all(opened, first, dry_run, workers, &bar, store.as_ref()).await;
    runs.extend(run_all(opened, second, dry_run, workers, &bar, store.as_ref()).await);
    bar.finish_and_clear();
    Report::new(dry_run, opened.env.clone(), sources, &flow_order, runs)
}

/// The string ids of listed records.
fn ids_of(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match r.get("id") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

/// Every record a watch matches (its `where` filter, no `since`: all of them).
async fn modified(opened: &Opened, w: &dispatch::Watch) -> Result<Vec<String>, String> {
    let connector = opened
        .project
        .connector_id(&w.connector)
        .ok_or_else(|| format!("no connector `{}`", w.connector))?;
    let filter: serde_json::Map<String, Value> = w.where_fields.iter().cloned().collect();
    let answer = opened
        .set
        .execute(Request::Call {
            connector,
            operation: "modified_since".into(),
            inputs: json!({"entity": w.entity, "where": filter}),
        })
        .await
        .map_err(|e| format!("modified_since: {}", e.message))?;
    let records = answer
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("modified_since answered without `records`: {answer}"))?;
    Ok(ids_of(records))
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
fn progress(len: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() || len == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} runs · {elapsed} · {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Runs the items: one record's items in order, records `workers` at a time.
async fn run_all(
    opened: &Opened,
    items: Vec<Item>,
    dry_run: bool,
    workers: usize,
    bar: &ProgressBar,
    store: Option<&Arc<Store>>,
) -> Vec<(String, RunRecord)> {
    let mut groups: Vec<Vec<Item>> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for item in items {
        match index.get(&item.record_key).and_then(|i| groups.get_mut(*i)) {
            Some(g) => g.push(item),
            None => {
                index.insert(item.record_key.clone(), groups.len());
                groups.push(vec![item]);
            }
        }
    }
    futures_util::stream::iter(groups)
        .map(|group| async move {
            let mut out = Vec::new();
            for item in group {
                bar.set_message(format!(
                    "{} {}",
                    item.flow,
                    super::table::cell(&item.record, 13)
                ));
                let (record, pairs) = run_one(opened, &item, dry_run, store).await;
                if let Some(store) = store.filter(|_| !dry_run) {
                    save(store, &record, pairs).await;
                }
                bar.inc(1);
                out.push((item.record, record));
            }
            out
        })
        .buffer_unordered(workers)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Runs one item against the links' sync bases; returns its record and, when
/// it succeeded, the pairs whose new bases are to be saved.
async fn run_one(
    opened: &Opened,
    item: &Item,
    dry_run: bool,
    store: Option<&Arc<Store>>,
) -> (RunRecord, Vec<SyncedPair>) {
    let project = &opened.project;
    let mut observer = PairObserver::default();
    let bases = match store {
        Some(store) => {
            let trigger = item.trigger.clone();
            let mappings = links::mapping_names(project);
            crate::service::blocking(store, move |s| links::bases(s, &mappings, &trigger))
                .await
                .unwrap_or_else(|e| {
                    eprintln!("warning: cannot read the links ({e}); comparing two-way");
                    Default::default()
                })
        }
        None => Default::default(),
    };
    let options = RunOptions {
        dry_run,
        bases,
        ..RunOptions::default()
    };
    let Some(flow) = project.flow(&item.flow) else {
        // Listed from this project's flows: cannot happen; report it as a failure.
        let outcome = crate::runtime::RunOutcome {
            run_id: uuid::Uuid::now_v7().to_string(),
            flow: item.flow.clone(),
            trigger: item.trigger.clone(),
            status: RunStatus::Failed,
            message: Some(format!("no flow `{}`", item.flow)),
            error: None,
            dry_run,
            started_at: crate::store::now(),
            duration_ms: 0,
            outputs: Vec::new(),
        };
        return (observer.record.finish(&outcome), Vec::new());
    };
    let outcome = Interpreter::new(project, opened.set.as_ref() as &dyn ConnectorSet)
        .run(flow, item.trigger.clone(), &mut observer, options)
        .await;
    let pairs = if outcome.status == RunStatus::Succeeded {
        std::mem::take(&mut observer.pairs)
    } else {
        Vec::new()
    };
    (observer.record.finish(&outcome), pairs)
}

/// Stores a run, its audit line and the new bases of its links (off the async
/// threads).
async fn save(store: &Arc<Store>, record: &RunRecord, pairs: Vec<SyncedPair>) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let status = match record.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    };
    let detail = match (&record.message, &record.error) {
        (Some(m), _) => format!(": {m}"),
        (None, Some(e)) => format!(": {}", e.message),
        (None, None) => format!(
            " ({} write{})",
            record.writes.len(),
            if record.writes.len() == 1 { "" } else { "s" }
        ),
    };
    let entry = AuditEntry {
        at: crate::store::now(),
        referral_id: text(record.trigger.get("resource_id")),
        crm_id: text(record.trigger.get("record_id")),
        flow: Some(record.flow.clone()),
        run_id: Some(record.run_id.clone()),
        message: format!("sync --full: {status}{detail}"),
    };
    let record_id = record.run_id.clone();
    let record = record.clone();
    let saved = crate::service::blocking(store, move |s| {
        s.save_run(&record, None)?;
        s.audit(&entry)?;
        links::save(s, &pairs)
    })
    .await;
    if let Err(e) = saved {
        eprintln!("error: cannot store run {record_id}: {e}");
    }
}
