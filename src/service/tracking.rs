//! CRM change detection by Dataverse change tracking (`mode: change_tracking`):
//! instead of asking for the rows modified since a watermark, each poll follows
//! the delta link the previous one was given, and Dataverse answers with the
//! rows changed since (cheaper on large orgs; the table must have change
//! tracking enabled).
//!
//! - The first poll of an entity (no delta link stored) reads the table once to
//!   be given a delta link and queues nothing: like watermark polling, changes
//!   made before the service first started are `cosync sync --full`'s job.
//! - Delta queries take no `$filter`, so the flow's `where:` (Sync = Yes) is
//!   applied here, to the rows returned; deleted rows are skipped (no flow
//!   syncs deletions).
//! - A row is `created` when its creation and modification times are equal, else
//!   `updated` (a row created and edited between two polls comes as `updated`).
//! - Events are de-duplicated by the row's eTag, like polled ones. The delta link
//!   is stored (in the watermark table, under `<entity>#delta`) only after the
//!   events are, so a failed poll is repeated from the same link.
//! - A delta link Dataverse refuses (expired after its retention, by default 7
//!   days) is dropped with a warning, and tracking starts again; changes made
//!   while the service was down that long need `cosync sync --full`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Shared;
use super::dispatch::{self, Watch};
use super::poller::{Mark, change_kinds, parse_time, store_events};
use crate::runtime::Request;
use crate::runtime::connectors::ErrorKind;
use crate::spec::connector::ConnectorKind;

/// The watermark-table key of an entity's delta link.
fn delta_key(entity: &str) -> String {
    format!("{entity}#delta")
}

/// True when a column value equals a `where` value as Dataverse compares them
/// (numbers by value, text without regard to case).
pub(crate) fn value_matches(got: &Value, wanted: &Value) -> bool {
    match (got, wanted) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (a, b) => a == b,
    }
}

/// True when a row (as the connector normalises it) has every `where` value.
pub(crate) fn matches(row: &Value, where_fields: &[(String, Value)]) -> bool {
    where_fields
        .iter()
        .all(|(field, wanted)| value_matches(row.get(field).unwrap_or(&Value::Null), wanted))
}

/// One change-tracking poll of one entity: returns the number of new events.
pub(crate) async fn poll_once(shared: &Arc<Shared>, w: &Watch) -> Result<usize, String> {
    let project = &shared.config.project;
    let connector = project
        .connector_id(&w.connector)
        .ok_or_else(|| format!("no connector `{}`", w.connector))?;
    let compiled = project.connector(connector);
    if compiled.spec.kind != ConnectorKind::Dataverse {
        return Err(format!(
            "`mode: change_tracking` needs a Dataverse connector; `{}` is not one",
            w.connector
        ));
    }
    let entity_spec = compiled.spec.entities.get(&w.entity);
    let modified = entity_spec
        .and_then(|e| e.modified_field.clone())
        .unwrap_or_else(|| "modifiedon".into());
    let created = entity_spec
        .and_then(|e| e.created_field.clone())
        .unwrap_or_else(|| "createdon".into());
    let key = compiled.key_field(&w.entity);
    let (c, k) = (w.connector.clone(), delta_key(&w.entity));
    let stored = super::blocking(&shared.config.store, move |s| s.watermark(&c, &k))
        .await
        .map_err(|e| e.to_string())?;
    let link = stored.map(|(link, _)| link).filter(|l| !l.is_empty());
    let first = link.is_none();
    let inputs = match &link {
        Some(link) => json!({"delta_link": link}),
        None => {
            let mut select = vec![key.clone(), modified.clone(), created.clone()];
            select.extend(w.where_fields.iter().map(|(f, _)| f.clone()));
            select.dedup();
            json!({"entity": w.entity, "select": select})
        }
    };
    let answer = shared
        .config
        .connectors
        .execute(Request::Call {
            connector,
            operation: "changes".into(),
            inputs,
        })
        .await;
    shared.metrics.call(&w.connector, "poll");
    let answer = match answer {
        Ok(a) => a,
        Err(e) if link.is_some() && matches!(e.kind, ErrorKind::Invalid | ErrorKind::NotFound) => {
            tracing::warn!(connector = %w.connector, entity = %w.entity,
                "the change-tracking delta link was refused ({}); tracking starts again — run `cosync sync --full` if the service was stopped for longer than the table's change retention", e.message);
            let (c, k) = (w.connector.clone(), delta_key(&w.entity));
            super::blocking(&shared.config.store, move |s| {
                s.set_watermark(&c, &k, "", "")
            })
            .await
            .map_err(|e| e.to_string())?;
            return Ok(0);
        }
        Err(e) => return Err(e.message),
    };
    let next = answer
        .get("delta_link")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut events = Vec::new();
    if !first {
        let rows = answer
            .get("records")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for row in rows {
            let Some(id) = row.get(&key).and_then(Value::as_str) else {
                continue;
            };
            let version = match row.get("@odata.etag") {
                Some(Value::String(s)) => s.clone(),
                _ => row
                    .get(&modified)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            };
            shared.mirror.observe(connector, &w.entity, id, &version);
            if !matches(row, &w.where_fields) {
                continue;
            }
            let time = |f: &str| row.get(f).and_then(Value::as_str).and_then(parse_time);
            // No watermark: only "first version" tells a creation here.
            let never = Mark::Watermark(chrono::DateTime::<chrono::Utc>::MAX_UTC);
            let kinds = change_kinds(time(&created), time(&modified), never, false);
            events.extend(dispatch::crm_events(w, id, &version, kinds));
        }
    } else {
        tracing::info!(connector = %w.connector, entity = %w.entity, "change tracking started");
    }
    let mark = next.map(|link| (delta_key(&w.entity), link, String::new()));
    store_events(shared, w, events, mark).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_values_compare_like_dataverse() {
        let row = json!({"cosell_syncwithpartnercenter": true, "statecode": 0, "name": "Contoso"});
        assert!(matches(
            &row,
            &[("cosell_syncwithpartnercenter".into(), json!(true))]
        ));
        assert!(!matches(
            &row,
            &[("cosell_syncwithpartnercenter".into(), json!(false))]
        ));
        assert!(matches(&row, &[("statecode".into(), json!(0.0))]));
        assert!(matches(&row, &[("name".into(), json!("contoso"))]));
        assert!(!matches(&row, &[("missing".into(), json!(true))]));
        assert!(matches(&row, &[]));
    }

    #[test]
    fn delta_links_are_kept_apart_from_watermarks() {
        assert_eq!(delta_key("opportunity"), "opportunity#delta");
    }
}
