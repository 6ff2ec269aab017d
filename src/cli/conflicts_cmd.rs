//! `cosync conflicts list|resolve`: fields changed on both sides since the last
//! sync that a `manual` policy parked for a person.
//!
//! Resolving records the decision and then makes it land: it queues one event
//! per enabled flow that writes toward the losing side through the conflict's
//! mapping table (Partner Center → CRM flows when Partner Center's value is
//! taken, the CRM's polled change flows when the CRM's is). A running
//! `cosync serve` runs them; the flow reads both records as they are now and
//! writes every mapped field that differs, the conflicting one among them.

use serde_json::{Value, json};

use super::Outcome;
use super::args::{ConflictsCommand, ConflictsListArgs, ConflictsResolveArgs, OutputFormat, Side};
use super::service_setup;
use super::table;
use crate::compile::{CompiledProject, CompiledStep, MappingId, StepKind};
use crate::mapping::RowValues;
use crate::service::dispatch;
use crate::spec::flow::ChangeKind;
use crate::store::{Conflict, Enqueued, NewEvent, Store};

/// Runs a `cosync conflicts` subcommand.
pub(super) fn run(command: &ConflictsCommand, color: bool) -> Outcome {
    match command {
        ConflictsCommand::List(a) => list(a, color),
        ConflictsCommand::Resolve(a) => match resolve(a, color) {
            Ok(o) => o,
            Err((message, outcome)) => {
                if !message.is_empty() {
                    eprintln!("error: {message}");
                }
                outcome
            }
        },
    }
}

fn list(args: &ConflictsListArgs, color: bool) -> Outcome {
    let store = match service_setup::open_existing_state(&args.target, color) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let conflicts = match store.conflicts(args.all) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Usage;
        }
    };
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "conflicts": conflicts })).unwrap_or_default()
        ),
        OutputFormat::Human if conflicts.is_empty() => println!(
            "{}",
            if args.all {
                "no conflicts"
            } else {
                "no open conflicts (`--all` shows resolved ones too)"
            }
        ),
        OutputFormat::Human => {
            let rows: Vec<Vec<String>> = conflicts.iter().map(row).collect();
            print!(
                "{}",
                table::render(
                    &[
                        "ID",
                        "MAPPING",
                        "REFERRAL",
                        "CRM ID",
                        "FIELD",
                        "PARTNER CENTER",
                        "CRM",
                        "CREATED (UTC)",
                        "RESOLVED",
                    ],
                    &rows
                )
            );
            let open = conflicts.iter().filter(|c| c.resolved_at.is_none()).count();
            println!(
                "{open} open; resolve with `cosync conflicts resolve ID --take partner_center|crm`"
            );
        }
    }
    Outcome::Success
}

fn row(c: &Conflict) -> Vec<String> {
    vec![
        c.id.to_string(),
        c.mapping.clone(),
        c.referral_id.clone(),
        c.crm_id.clone().unwrap_or_else(|| "-".into()),
        c.field.clone(),
        table::value(&c.partner_center),
        table::value(&c.crm),
        table::time(&c.created_at),
        match (&c.resolved_at, &c.resolution) {
            (Some(at), Some(side)) => format!("{} (took {side})", table::time(at)),
            (Some(at), None) => table::time(at),
            _ => "open".into(),
        },
    ]
}

type Failure = (String, Outcome);

fn resolve(args: &ConflictsResolveArgs, color: bool) -> Result<Outcome, Failure> {
    let project = service_setup::load(&args.target, color).map_err(|o| (String::new(), o))?;
    let path = service_setup::state_path(&project, &args.target);
    if !path.exists() {
        return Err((
            format!(
                "no state file at {}: no conflict was parked",
                path.display()
            ),
            Outcome::Usage,
        ));
    }
    let store = service_setup::open_store(&path).map_err(|e| (e, Outcome::Usage))?;
    let io = |e: crate::store::StoreError| (e.to_string(), Outcome::Usage);
    let conflict = store
        .conflicts(true)
        .map_err(io)?
        .into_iter()
        .find(|c| c.id == args.id)
        .ok_or_else(|| {
            (
                format!(
                    "no conflict with id {} (`cosync conflicts list --all` shows them)",
                    args.id
                ),
                Outcome::Problems,
            )
        })?;
    if let (Some(at), side) = (&conflict.resolved_at, &conflict.resolution) {
        return Err((
            format!(
                "conflict {} was already resolved at {at} (took {})",
                conflict.id,
                side.as_deref().unwrap_or("?")
            ),
            Outcome::Problems,
        ));
    }
    // Plan the events first: a decision that cannot land is not recorded.
    let events = plan(&project, &conflict, args.take).map_err(|m| (m, Outcome::Problems))?;
    let side = match args.take {
        Side::PartnerCenter => "partner_center",
        Side::Crm => "crm",
    };
    let resolved = store
        .resolve_conflict(conflict.id, side)
        .map_err(|e| (e.to_string(), Outcome::Problems))?;
    let rebased = rebase(&store, &resolved, args.take).map_err(|e| {
        (
            format!("the conflict is resolved, but its link could not be updated: {e}"),
            Outcome::Usage,
        )
    })?;
    let queued = enqueue(&store, &events)?;
    match args.format {
        OutputFormat::Json => {
            let out = json!({
                "conflict": resolved,
                "take": side,
                "link_base_updated": rebased,
                "queued": queued.iter().map(|(id, e)| json!({
                    "event_id": id,
                    "flow": e.flow,
                    "record_key": e.record_key,
                    "dedupe_key": e.dedupe_key,
                    "payload": e.payload,
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        OutputFormat::Human => print!("{}", human(&resolved, args.take, rebased, &queued)),
    }
    Ok(Outcome::Success)
}

/// The events that carry the winning value to the losing side.
fn plan(
    project: &CompiledProject,
    conflict: &Conflict,
    take: Side,
) -> Result<Vec<NewEvent>, String> {
    let mapping_id = project.mapping_id(&conflict.mapping).ok_or_else(|| {
        format!(
            "the project has no mapping table `{}` any more; cannot write the chosen value",
            conflict.mapping
        )
    })?;
    let mapping = project
        .mappings
        .get(mapping_id.0)
        .ok_or_else(|| format!("mapping table `{}` is missing", conflict.mapping))?;
    let crm_connector = project.connector(mapping.crm.connector).name.clone();
    let nonce = uuid::Uuid::new_v4();
    let events: Vec<NewEvent> = match take {
        Side::PartnerCenter => {
            let id = &conflict.referral_id;
            dispatch::partner_center_flows(project, "referral-updated")
                .into_iter()
                .filter(|f| project.flow(f).is_some_and(|f| uses_mapping(&f.steps, mapping_id)))
                .map(|flow| NewEvent {
                    source: "partner_center".into(),
                    record_key: format!("referral:{id}"),
                    dedupe_key: format!("conflict:{}:{flow}:{nonce}", conflict.id),
                    flow: Some(flow.to_string()),
                    payload: json!({
                        "EventName": "referral-updated",
                        "ResourceUri": format!("https://api.partner.microsoft.com/engagements/v1/referrals/{id}"),
                        "ResourceName": "referral",
                        "ResourceChangeUtcDate": crate::store::now(),
                        "ConflictId": conflict.id,
                    }),
                })
                .collect()
        }
        Side::Crm => {
            let crm_id = conflict.crm_id.as_deref().ok_or_else(|| {
                format!(
                    "conflict {} names no CRM record, so no flow can carry the CRM's value",
                    conflict.id
                )
            })?;
            dispatch::watches(project)
                .into_iter()
                .filter(|w| w.connector == crm_connector && w.entity == mapping.crm.entity)
                .flat_map(|w| {
                    let w2 = w.clone();
                    w.flows.into_iter().filter_map(move |(flow, kinds)| {
                        let uses = project
                            .flow(&flow)
                            .is_some_and(|f| uses_mapping(&f.steps, mapping_id));
                        (uses && kinds.contains(&ChangeKind::Updated)).then(|| NewEvent {
                            source: w2.connector.clone(),
                            record_key: format!("{}:{}:{crm_id}", w2.connector, w2.entity),
                            dedupe_key: format!("conflict:{}:{flow}:{nonce}", conflict.id),
                            flow: Some(flow.clone()),
                            payload: json!({"record_id": crm_id, "record": {}, "change": "updated", "conflict_id": conflict.id}),
                        })
                    })
                })
                .collect()
        }
    };
    if events.is_empty() {
        let which = match take {
            Side::PartnerCenter => format!(
                "Partner Center → CRM flow (partner_center trigger with referral-updated) uses mapping `{}`",
                conflict.mapping
            ),
            Side::Crm => format!(
                "polled `{crm_connector}`/`{}` change flow uses mapping `{}`",
                mapping.crm.entity, conflict.mapping
            ),
        };
        return Err(format!(
            "no enabled {which}, so nothing would write the chosen value; the conflict stays open"
        ));
    }
    Ok(events)
}

/// Whether any step (at any depth) projects through `mapping`.
fn uses_mapping(steps: &[CompiledStep], mapping: MappingId) -> bool {
    steps.iter().any(|s| match &s.kind {
        StepKind::Create { projection, .. }
        | StepKind::Update { projection, .. }
        | StepKind::Upsert { projection, .. } => {
            projection.as_ref().is_some_and(|p| p.mapping == mapping)
        }
        StepKind::Map(p) | StepKind::Diff { projection: p, .. } => p.mapping == mapping,
        StepKind::Scope(inner) | StepKind::Foreach { steps: inner, .. } => {
            uses_mapping(inner, mapping)
        }
        StepKind::Until { steps: inner, .. } => uses_mapping(inner, mapping),
        StepKind::If {
            then, otherwise, ..
        } => uses_mapping(then, mapping) || uses_mapping(otherwise, mapping),
        StepKind::Switch { cases, default, .. } => {
            cases.iter().any(|(_, c)| uses_mapping(c, mapping)) || uses_mapping(default, mapping)
        }
        _ => false,
    })
}

fn enqueue(store: &Store, events: &[NewEvent]) -> Result<Vec<(i64, NewEvent)>, Failure> {
    let mut out = Vec::new();
    for e in events {
        match store.enqueue(e) {
            Ok(Enqueued::New(id)) => out.push((id, e.clone())),
            // The key holds a fresh nonce: a duplicate cannot happen.
            Ok(Enqueued::Duplicate) => {}
            Err(err) => {
                return Err((
                    format!(
                        "the conflict is resolved, but queueing flow `{}` failed: {err}; run `cosync sync --full` to write the value",
                        e.flow.as_deref().unwrap_or("-")
                    ),
                    Outcome::Usage,
                ));
            }
        }
    }
    Ok(out)
}

/// Marks the losing side's value as already synced in the link's base, so the
/// next three-way merge sees only the winning side changed and writes it
/// (instead of parking the same conflict again). Returns whether a link was
/// updated; without a link, flows compare the two records directly and the
/// flow's direction decides.
fn rebase(store: &Store, c: &Conflict, take: Side) -> Result<bool, crate::store::StoreError> {
    let Some(link) = store.link_by_referral(&c.mapping, &c.referral_id)? else {
        return Ok(false);
    };
    let mut base = link.base.clone();
    let before = c
        .base
        .as_ref()
        .and_then(|b| serde_json::from_value::<RowValues>(b.clone()).ok());
    // The winner's base must differ from its value, or the merge would see no
    // change on either side and apply the row's policy again.
    let changed_from = |now: &Value, was: Option<&Value>| match was {
        Some(v) if v != now && !v.is_null() && v != "" => v.clone(),
        _ => Value::String(RESOLVED_MARK.into()),
    };
    let row = match take {
        Side::PartnerCenter => RowValues {
            partner_center: changed_from(
                &c.partner_center,
                before.as_ref().map(|b| &b.partner_center),
            ),
            crm: c.crm.clone(),
        },
        Side::Crm => RowValues {
            partner_center: c.partner_center.clone(),
            crm: changed_from(&c.crm, before.as_ref().map(|b| &b.crm)),
        },
    };
    base.insert(c.field.clone(), row);
    store.save_link(&c.mapping, &c.referral_id, link.crm_id.as_deref(), &base)?;
    Ok(true)
}

/// A base value no real field holds: "the winner changed since the last sync".
const RESOLVED_MARK: &str = "(changed: resolved by cosync conflicts resolve)";

fn human(c: &Conflict, take: Side, rebased: bool, queued: &[(i64, NewEvent)]) -> String {
    let (winner, loser, winning, losing) = match take {
        Side::PartnerCenter => ("Partner Center", "the CRM", &c.partner_center, &c.crm),
        Side::Crm => ("the CRM", "Partner Center", &c.crm, &c.partner_center),
    };
    let mut out = format!(
        "conflict {} resolved: `{}` takes {winner}'s value {} over {loser}'s {}\n",
        c.id,
        c.field,
        show(winning),
        show(losing)
    );
    out.push_str(&if rebased {
        format!(
            "link base of `{}` updated: {loser}'s value {} now counts as already synced, so the next merge writes {winner}'s value instead of parking the conflict again\n",
            c.field,
            show(losing)
        )
    } else {
        format!(
            "no link for referral {} in `{}` yet: the flow compares the two records directly\n",
            c.referral_id, c.mapping
        )
    });
    out.push_str(&format!(
        "queued {} event{} so that the value reaches {loser}:\n",
        queued.len(),
        if queued.len() == 1 { "" } else { "s" }
    ));
    for (id, e) in queued {
        out.push_str(&format!(
            "  event {id}: flow {} for {} (record key {})\n",
            e.flow.as_deref().unwrap_or("-"),
            match take {
                Side::PartnerCenter => format!("referral {}", c.referral_id),
                Side::Crm => format!("CRM record {}", c.crm_id.as_deref().unwrap_or("-")),
            },
            e.record_key
        ));
    }
    out.push_str(&format!(
        "each run reads both records as they are now and writes to {loser} the fields of mapping `{}` that differ (by three-way merge where a link exists) — `{}` among them, with {winner}'s current value if it changed since\n",
        c.mapping, c.field
    ));
    out.push_str("a running `cosync serve` runs them right away (its workers poll the queue); otherwise the next `cosync serve` does; `cosync runs list` shows the runs\n");
    out
}

fn show(v: &Value) -> String {
    table::cell(&v.to_string(), 60)
}
