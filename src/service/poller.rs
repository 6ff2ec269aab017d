//! CRM change detection by watermark: every poll interval, each watched entity is
//! asked for the records modified at or after the stored watermark (minus a small
//! overlap for commits that land late), oldest first with the id as
//! tie-breaker. Each changed record becomes one event per flow, de-duplicated by
//! the record's version (Dataverse eTag, Salesforce `SystemModstamp`), so the
//! overlap never runs a flow twice for the same change. The watermark advances
//! only after the events are stored.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::dispatch::{self, Watch};
use super::{Shared, blocking};
use crate::runtime::Request;
use crate::spec::flow::ChangeKind;
use crate::store::Enqueued;

/// Records re-listed before the watermark, for commits that land late.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(2);
/// Most records read per poll and entity.
const BATCH: u32 = 1000;

pub use crate::domain::parse_time;

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Polls every watched entity until `stop`.
pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let watches = dispatch::watches(&shared.config.project);
    if watches.is_empty() {
        return;
    }
    let start = shared
        .config
        .poll_from
        .as_deref()
        .and_then(parse_time)
        .unwrap_or_else(Utc::now);
    loop {
        for w in &watches {
            if *stop.borrow() {
                return;
            }
            match poll_once(&shared, w, start).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(connector = %w.connector, entity = %w.entity, events = n, "CRM changes queued");
                    shared.wake.notify_waiters();
                }
                Err(e) => {
                    tracing::warn!(connector = %w.connector, entity = %w.entity, "polling failed (will retry): {e}")
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(shared.config.poll_interval) => {}
        }
    }
}

/// One poll of one entity: returns the number of new events stored.
pub(crate) async fn poll_once(
    shared: &Arc<Shared>,
    w: &Watch,
    start: DateTime<Utc>,
) -> Result<usize, String> {
    let project = &shared.config.project;
    let connector = project
        .connector_id(&w.connector)
        .ok_or_else(|| format!("no connector `{}`", w.connector))?;
    let (c, e) = (w.connector.clone(), w.entity.clone());
    let mark = blocking(&shared.config.store, move |s| s.watermark(&c, &e))
        .await
        .map_err(|e| e.to_string())?;
    let since = mark
        .as_ref()
        .and_then(|(m, _)| parse_time(m))
        .unwrap_or(start)
        - OVERLAP;
    let filter: serde_json::Map<String, Value> = w.where_fields.iter().cloned().collect();
    let answer = shared
        .config
        .connectors
        .execute(Request::Call {
            connector,
            operation: "modified_since".into(),
            inputs: json!({"entity": w.entity, "since": stamp(since), "where": filter, "limit": BATCH}),
        })
        .await
        .map_err(|e| e.message)?;
    shared.metrics.call(&w.connector, "poll");
    let records = answer
        .get("records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut events = Vec::new();
    let mut newest: Option<(DateTime<Utc>, String)> = None;
    for r in &records {
        let Some(id) = r.get("id").and_then(Value::as_str) else {
            continue;
        };
        let version = match r.get("version") {
            Some(Value::String(s)) => s.clone(),
            Some(v) if !v.is_null() => v.to_string(),
            _ => String::new(),
        };
        // A mirrored copy of a record that moved on is dropped here, before any
        // event of it runs.
        shared.mirror.observe(connector, &w.entity, id, &version);
        events.extend(dispatch::crm_events(w, id, &version, ChangeKind::Updated));
        if let Some(at) = r
            .get("modified_at")
            .and_then(Value::as_str)
            .and_then(parse_time)
            && newest.as_ref().is_none_or(|(t, _)| at >= *t)
        {
            newest = Some((at, id.to_string()));
        }
    }
    let (c, e) = (w.connector.clone(), w.entity.clone());
    // A linked opportunity's events share the referral's ordering key, so that a
    // CRM change and a Partner Center event of one pair never run at once.
    let mappings: Vec<String> = project
        .mappings
        .iter()
        .filter(|m| m.crm.connector == connector && m.crm.entity == w.entity)
        .map(|m| m.name.clone())
        .collect();
    let stored = blocking(&shared.config.store, move |s| {
        let mut n = 0;
        for ev in &mut events {
            let crm_id = ev
                .payload
                .get("record_id")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(crm_id) = crm_id {
                for m in &mappings {
                    if let Some(link) = s.link_by_crm(m, &crm_id)? {
                        ev.record_key = format!("referral:{}", link.referral_id);
                        break;
                    }
                }
            }
            if let Enqueued::New(_) = s.enqueue(ev)? {
                n += 1;
            }
        }
        if let Some((at, id)) = newest {
            s.set_watermark(&c, &e, &stamp(at), &id)?;
        }
        Ok(n)
    })
    .await
    .map_err(|e| e.to_string())?;
    shared.metrics.stored(stored);
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_crm_time_formats_parse() {
        let a = parse_time("2024-05-01T10:00:00Z");
        let b = parse_time("2024-05-01T10:00:00.000+0000");
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(parse_time("yesterday"), None);
    }
}
