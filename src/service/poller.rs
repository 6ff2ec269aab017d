//! CRM change detection by watermark: every poll interval, each watched entity is
//! asked for the records modified at or after the stored watermark (minus a small
//! overlap for commits that land late), oldest first with the id as
//! tie-breaker. Each changed record becomes one event per flow, de-duplicated by
//! the record's version (Dataverse eTag, Salesforce `SystemModstamp`), so the
//! overlap never runs a flow twice for the same change. The watermark advances
//! only after the events are stored.
//!
//! Created or updated: `modified_since` also returns each record's creation time
//! (`createdon`, `CreatedDate`, or the entity's `created_field`), and
//! [`change_kinds`] compares it with the poll's *mark*: the stored watermark, or
//! on an entity's first poll (no watermark yet) the time polling starts from
//! (`server.poll_from`, else the service's start). The overlap is not part of
//! the mark. A polled record version is
//!
//! - `updated` when this poller already reported another version of the record
//!   as created (it remembers those while a poll can still list them: see
//!   below);
//! - `created` when it is the record's first version (created at its
//!   modification time): this also catches a creation that committed late into
//!   the overlap, and a first version listed again in the next poll's overlap is
//!   `created` again, which the version de-duplication drops;
//! - `created`, or `updated` for flows that take only updates, when the record
//!   was created after the watermark (at or after the start on a first poll) and
//!   modified since: no poll saw it before, and both happened since the last
//!   one;
//! - `updated` otherwise, and when the CRM returned no creation time.
//!
//! The watermark comparison is strict because the watermark is the newest
//! modification the last poll saw: a record created at that instant may be the
//! one that set it, and its next version is an update. The kinds of one version
//! can only narrow from poll to poll (the watermark only grows), so a version
//! listed twice never gives one flow two events.
//!
//! Dataverse stamps whole seconds, so a record changed within the second it was
//! created (typically by the flow writing back what it synced) still carries
//! its creation time as modification time. The poller therefore remembers, per
//! watched entity and in memory, the versions it reported as created, until
//! the overlap has moved past their creation time: a different version of such
//! a record is an update. Limits: that memory does not survive a restart (a
//! same-second change listed for the first time by the next process is
//! `created`); a record created in the same instant as the watermark but not
//! yet visible to the last poll, then modified, is `updated`.

use std::collections::HashMap;
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

/// A time as the watermark table stores it.
pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What a poll compares creation times with (the overlap is not part of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// The newest modification time an earlier poll stored.
    Watermark(DateTime<Utc>),
    /// No watermark yet: the time polling starts from.
    Start(DateTime<Utc>),
}

impl Mark {
    fn time(self) -> DateTime<Utc> {
        match self {
            Mark::Watermark(t) | Mark::Start(t) => t,
        }
    }

    /// A record created at `at` was created after everything earlier polls saw.
    fn precedes(self, at: DateTime<Utc>) -> bool {
        match self {
            Mark::Watermark(t) => at > t,
            Mark::Start(t) => at >= t,
        }
    }
}

/// The records of one watched entity that polls reported as created, with the
/// version reported, while a later poll can still list them with their
/// creation time as modification time.
#[derive(Debug, Default)]
pub(crate) struct Reported(HashMap<String, (String, DateTime<Utc>)>);

impl Reported {
    /// A version of `id` other than `version` was reported as created.
    pub(crate) fn other_version(&self, id: &str, version: &str) -> bool {
        self.0.get(id).is_some_and(|(v, _)| v != version)
    }

    /// Remembers that `version` of `id`, created at `at`, was reported as created.
    pub(crate) fn remember(&mut self, id: String, version: String, at: DateTime<Utc>) {
        self.0.insert(id, (version, at));
    }

    /// Forgets the creations before `since` (less a second, for stamps in
    /// whole seconds): no poll from `since` on lists them unchanged.
    pub(crate) fn forget_before(&mut self, since: DateTime<Utc>) {
        let horizon = since - chrono::Duration::seconds(1);
        self.0.retain(|_, (_, created)| *created >= horizon);
    }
}

const CREATED: &[ChangeKind] = &[ChangeKind::Created];
const CREATED_THEN_UPDATED: &[ChangeKind] = &[ChangeKind::Created, ChangeKind::Updated];
const UPDATED: &[ChangeKind] = &[ChangeKind::Updated];

/// The kinds of change a polled record version counts as, the preferred first
/// (see the module doc): `created_at` and `modified_at` are the record's, `mark`
/// the poll's; `reported` says another version of the record was reported as
/// created.
pub(crate) fn change_kinds(
    created_at: Option<DateTime<Utc>>,
    modified_at: Option<DateTime<Utc>>,
    mark: Mark,
    reported: bool,
) -> &'static [ChangeKind] {
    let Some(created) = created_at else {
        return UPDATED;
    };
    if reported {
        UPDATED
    } else if modified_at.is_some_and(|m| m <= created) {
        CREATED
    } else if mark.precedes(created) {
        CREATED_THEN_UPDATED
    } else {
        UPDATED
    }
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
    let mut reported: Vec<Reported> = watches.iter().map(|_| Reported::default()).collect();
    loop {
        for (w, reported) in watches.iter().zip(reported.iter_mut()) {
            if *stop.borrow() {
                return;
            }
            let polled = if w.tracked {
                super::tracking::poll_once(&shared, w, reported).await
            } else {
                poll_once(&shared, w, start, reported).await
            };
            match polled {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(connector = %w.connector, entity = %w.entity, events = n, "CRM changes queued");
                    shared.wake_workers(n);
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
    reported: &mut Reported,
) -> Result<usize, String> {
    let project = &shared.config.project;
    let connector = project
        .connector_id(&w.connector)
        .ok_or_else(|| format!("no connector `{}`", w.connector))?;
    let (c, e) = (w.connector.clone(), w.entity.clone());
    let stored = blocking(&shared.config.store, move |s| s.watermark(&c, &e))
        .await
        .map_err(|e| e.to_string())?;
    let mark = match stored.as_ref().and_then(|(m, _)| parse_time(m)) {
        Some(at) => Mark::Watermark(at),
        None => Mark::Start(start),
    };
    let since = mark.time() - OVERLAP;
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
    let mut creations = Vec::new();
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
        let time = |field: &str| r.get(field).and_then(Value::as_str).and_then(parse_time);
        let modified_at = time("modified_at");
        let created_at = time("created_at");
        let kinds = change_kinds(
            created_at,
            modified_at,
            mark,
            reported.other_version(id, &version),
        );
        if let (Some(ChangeKind::Created), Some(at)) = (kinds.first(), created_at) {
            creations.push((id.to_string(), version.clone(), at));
        }
        events.extend(dispatch::crm_events(w, id, &version, kinds));
        if let Some(at) = modified_at
            && newest.as_ref().is_none_or(|(t, _)| at >= *t)
        {
            newest = Some((at, id.to_string()));
        }
    }
    let mark = newest.map(|(at, id)| (w.entity.clone(), stamp(at), id));
    let stored = store_events(shared, w, events, mark).await?;
    // Only once stored: a poll that failed lists the same versions again.
    for (id, version, at) in creations {
        reported.remember(id, version, at);
    }
    reported.forget_before(since);
    Ok(stored)
}

/// Stores the events of one poll, then moves the entity's mark (`(key, mark,
/// id)` in the watermark table) — only once they are stored, so a poll that
/// failed lists the same changes again. Returns the number of new events.
pub(crate) async fn store_events(
    shared: &Arc<Shared>,
    w: &Watch,
    mut events: Vec<crate::store::NewEvent>,
    mark: Option<(String, String, String)>,
) -> Result<usize, String> {
    let project = &shared.config.project;
    let connector = project
        .connector_id(&w.connector)
        .ok_or_else(|| format!("no connector `{}`", w.connector))?;
    let c = w.connector.clone();
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
        if let Some((key, mark, id)) = mark {
            s.set_watermark(&c, &key, &mark, &id)?;
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

    use ChangeKind::{Created, Updated};

    fn at(text: &str) -> Option<DateTime<Utc>> {
        parse_time(text)
    }

    fn watermark(text: &str) -> Mark {
        Mark::Watermark(at(text).unwrap_or_else(|| panic!("bad time {text}")))
    }

    fn kinds(created: &str, modified: &str, mark: Mark) -> Vec<ChangeKind> {
        change_kinds(at(created), at(modified), mark, false).to_vec()
    }

    const W: &str = "2024-05-01T10:00:00Z";

    #[test]
    fn a_record_created_after_the_watermark_is_created() {
        let t = "2024-05-01T10:00:05Z";
        assert_eq!(kinds(t, t, watermark(W)), [Created]);
    }

    #[test]
    fn a_record_created_and_modified_since_the_last_poll_is_both() {
        let k = kinds("2024-05-01T10:00:05Z", "2024-05-01T10:00:09Z", watermark(W));
        assert_eq!(k, [Created, Updated]);
    }

    #[test]
    fn a_record_modified_after_an_earlier_poll_saw_it_is_updated() {
        let k = kinds("2024-04-01T08:00:00Z", "2024-05-01T10:00:05Z", watermark(W));
        assert_eq!(k, [Updated]);
        // Created in the overlap and seen by the last poll, modified since.
        let k = kinds("2024-05-01T09:59:59Z", "2024-05-01T10:00:05Z", watermark(W));
        assert_eq!(k, [Updated]);
    }

    #[test]
    fn the_record_that_set_the_watermark_is_updated_when_modified_again() {
        // Its creation set the watermark (created = modified = W); at or after
        // would call its next version a creation.
        assert_eq!(kinds(W, W, watermark(W)), [Created]);
        assert_eq!(kinds(W, "2024-05-01T10:00:03Z", watermark(W)), [Updated]);
    }

    #[test]
    fn a_first_version_in_the_overlap_is_created_every_time_it_is_listed() {
        // Either the last poll saw it (same kind, same version: de-duplicated) or
        // its commit landed late (a creation no poll reported yet).
        let t = "2024-05-01T09:59:59Z";
        assert_eq!(kinds(t, t, watermark(W)), [Created]);
        assert_eq!(kinds(t, t, watermark("2024-05-01T10:00:01Z")), [Created]);
    }

    #[test]
    fn the_kinds_of_one_version_only_narrow_as_the_watermark_grows() {
        let (c, m) = ("2024-05-01T10:00:05Z", "2024-05-01T10:00:09Z");
        assert_eq!(kinds(c, m, watermark(W)), [Created, Updated]);
        // The next poll lists it again in its overlap (watermark = m).
        assert_eq!(kinds(c, m, watermark(m)), [Updated]);
    }

    #[test]
    fn the_first_poll_compares_with_the_start_inclusively() {
        let start = Mark::Start(at(W).unwrap_or_else(|| panic!("bad time")));
        assert_eq!(kinds(W, "2024-05-01T10:00:01Z", start), [Created, Updated]);
        let before = "2024-05-01T09:59:59Z";
        assert_eq!(kinds(before, "2024-05-01T10:00:01Z", start), [Updated]);
        // Listed by the first poll's overlap, never modified: a creation.
        assert_eq!(kinds(before, before, start), [Created]);
    }

    #[test]
    fn without_a_creation_time_a_change_is_an_update() {
        assert_eq!(kinds("", "2024-05-01T10:00:05Z", watermark(W)), [Updated]);
        assert_eq!(change_kinds(at(W), None, watermark(W), false), [Updated]);
        assert_eq!(
            change_kinds(at("2024-05-01T10:00:05Z"), None, watermark(W), false),
            [Created, Updated]
        );
    }

    #[test]
    fn a_same_second_change_of_a_reported_creation_is_updated() {
        // Dataverse: created and written back within 10:00:05.
        let t = "2024-05-01T10:00:05Z";
        assert_eq!(kinds(t, t, watermark(W)), [Created]);
        assert_eq!(change_kinds(at(t), at(t), watermark(t), true), [Updated]);
    }

    #[test]
    fn reported_creations_are_remembered_by_version_until_the_overlap_passes() {
        let mut r = Reported::default();
        let created = at("2024-05-01T10:00:05Z").unwrap_or_else(|| panic!("bad time"));
        r.0.insert("a".into(), ("W/\"1\"".into(), created));
        assert!(!r.other_version("a", "W/\"1\""));
        assert!(r.other_version("a", "W/\"2\""));
        assert!(!r.other_version("b", "W/\"2\""));
        // A poll from 10:00:06 may still list the record (whole seconds).
        r.forget_before(created + chrono::Duration::seconds(1));
        assert!(r.other_version("a", "W/\"2\""));
        r.forget_before(created + chrono::Duration::seconds(2));
        assert!(!r.other_version("a", "W/\"2\""));
    }

    #[test]
    fn both_crm_time_formats_compare() {
        // Salesforce stamps: created = SystemModstamp on a first version.
        let t = "2024-05-01T10:00:05.123+0000";
        assert_eq!(kinds(t, t, watermark(W)), [Created]);
        assert_eq!(
            kinds(t, "2024-05-01T10:00:05.124+0000", watermark(W)),
            [Created, Updated]
        );
    }

    #[test]
    fn both_crm_time_formats_parse() {
        let a = parse_time("2024-05-01T10:00:00Z");
        let b = parse_time("2024-05-01T10:00:00.000+0000");
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(parse_time("yesterday"), None);
    }
}
