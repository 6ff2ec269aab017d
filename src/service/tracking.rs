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
//! - A row is `created` when its creation and modification times are equal, or
//!   when it was created after the newest modification any earlier read returned
//!   (created, then edited, between two reads: `created` for flows that take
//!   creations, `updated` for flows that take only updates), else `updated`.
//!   That newest modification time is Dataverse's own clock, stored beside the
//!   delta link, so no clock skew enters the comparison (when the first read
//!   returned no rows at all, every row a later read returns is new).
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
use super::poller::{Mark, Reported, change_kinds, parse_time, stamp, store_events};
use crate::runtime::Request;
use crate::runtime::connectors::ErrorKind;
use crate::spec::connector::ConnectorKind;
use crate::spec::flow::ChangeKind;

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
pub(crate) async fn poll_once(
    shared: &Arc<Shared>,
    w: &Watch,
    reported: &mut Reported,
) -> Result<usize, String> {
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
    let (link, seen) = match stored {
        Some((link, seen)) if !link.is_empty() => (Some(link), parse_time(&seen)),
        _ => (None, None),
    };
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
    let rows = answer
        .get("records")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    // Without a stored newest modification (links stored by earlier versions)
    // only "first version" tells a creation.
    let mark = Mark::Watermark(seen.unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC));
    let mut events = Vec::new();
    let mut creations = Vec::new();
    if !first {
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
            let created_at = time(&created);
            let kinds = change_kinds(
                created_at,
                time(&modified),
                mark,
                reported.other_version(id, &version),
            );
            if let (Some(ChangeKind::Created), Some(at)) = (kinds.first(), created_at) {
                creations.push((id.to_string(), version.clone(), at));
            }
            events.extend(dispatch::crm_events(w, id, &version, kinds));
        }
    } else {
        tracing::info!(connector = %w.connector, entity = %w.entity, "change tracking started");
    }
    let newest = match newest_modification(rows, &modified, seen) {
        Some(t) => stamp(t),
        // The first read returns every row, and it returned none: every row a
        // later read returns was created after it.
        None if first => NOTHING_SEEN.to_string(),
        // A link stored by an earlier version, and no row since: unknown.
        None => String::new(),
    };
    let stored_mark = next.map(|link| (delta_key(&w.entity), link, newest));
    let stored = store_events(shared, w, events, stored_mark).await?;
    // As the poller does (see its module doc): Dataverse stamps whole seconds,
    // so a row changed within the second it was created comes again with its
    // creation time as modification time; another version of a row reported
    // as created is an update, for as long as a read can still list it so.
    for (id, version, at) in creations {
        reported.remember(id, version, at);
    }
    if let Some(at) = seen {
        reported.forget_before(at);
    }
    Ok(stored)
}

/// The mark stored when the first read of a table returned no rows: earlier
/// than any row's creation.
const NOTHING_SEEN: &str = "0001-01-01T00:00:00Z";

/// The newest modification time among `rows` (every row a read returned, synced
/// or not) and the one `earlier` reads saw: a row created after it was created
/// after everything those reads returned.
fn newest_modification(
    rows: &[Value],
    modified: &str,
    earlier: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    rows.iter()
        .filter_map(|r| r.get(modified).and_then(Value::as_str).and_then(parse_time))
        .chain(earlier)
        .max()
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
    fn a_row_created_after_everything_earlier_reads_returned_is_a_creation() {
        use crate::spec::flow::ChangeKind::{Created, Updated};
        let t = |s: &str| parse_time(s).unwrap_or_else(|| panic!("{s}"));
        // The first read returned rows up to 10:00:05; a later read returns one
        // row modified after that and, from an earlier read, an older one.
        let first = [
            json!({"modifiedon": "2026-11-25T10:00:01Z"}),
            json!({"modifiedon": "2026-11-25T10:00:05Z", "name": "x"}),
            json!({"name": "no time"}),
        ];
        let seen = newest_modification(&first, "modifiedon", None);
        assert_eq!(seen, Some(t("2026-11-25T10:00:05Z")));
        assert_eq!(
            newest_modification(
                &[json!({"modifiedon": "2026-11-25T09:00:00Z"})],
                "modifiedon",
                seen
            ),
            seen,
            "the mark never moves back"
        );
        let mark = Mark::Watermark(seen.unwrap_or_else(|| panic!("no mark")));
        // An empty table's mark parses and precedes every row.
        assert!(parse_time(NOTHING_SEEN).is_some_and(|t| Some(t) < seen));
        // Created after the mark, edited since: a creation (then an update).
        assert_eq!(
            change_kinds(
                Some(t("2026-11-25T10:00:07Z")),
                Some(t("2026-11-25T10:00:09Z")),
                mark,
                false
            ),
            [Created, Updated]
        );
        // Created at or before the mark: an earlier read could have seen it.
        assert_eq!(
            change_kinds(
                Some(t("2026-11-25T10:00:05Z")),
                Some(t("2026-11-25T10:00:09Z")),
                mark,
                false
            ),
            [Updated]
        );
        // Created and modified at once: a first version, whatever the mark.
        assert_eq!(
            change_kinds(
                Some(t("2026-11-25T09:00:00Z")),
                Some(t("2026-11-25T09:00:00Z")),
                mark,
                false
            ),
            [Created]
        );
    }

    #[test]
    fn delta_links_are_kept_apart_from_watermarks() {
        assert_eq!(delta_key("opportunity"), "opportunity#delta");
    }
}
