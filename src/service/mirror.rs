//! The record mirror: the CRM records the service last read or wrote, by
//! connector, entity and key, with their concurrency version (Dataverse
//! `@odata.etag`, Salesforce's modified stamp). With it a steady-state change
//! costs two API calls — read the referral, write the opportunity — instead of
//! a find, a reference lookup (currencies) and a re-read on every event.
//!
//! A mirrored record may be out of date (a person edited it since); what keeps
//! that safe:
//! - a write to a record the run read from the mirror carries the mirrored
//!   version as `If-Match`; when the CRM refuses it (412), the record is dropped
//!   and the run stops as a stale read, to be run again on fresh reads
//!   ([`Cached`]);
//! - the CRM poller drops a record whose version moved ([`Mirror::observe`]);
//! - entries expire after a time to live, and a failed run drops what it read;
//! - only finds of one record (`limit: 1`, no `select`) are answered, and only
//!   when a mirrored record matches every field; misses go to the CRM.
//!
//! Records are held up to a capacity; the oldest insertions go first.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::compile::{CompiledProject, ConnectorId};
use crate::runtime::connectors::ErrorKind;
use crate::runtime::{BoxFuture, ConnectorError, ConnectorSet, Request};
use crate::spec::connector::ConnectorKind;

/// How the mirror is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorLimits {
    /// How long a record is trusted after it was read or written; zero turns
    /// the mirror off.
    pub ttl: Duration,
    /// Most records held.
    pub records: usize,
}

impl Default for MirrorLimits {
    fn default() -> Self {
        MirrorLimits {
            ttl: Duration::from_secs(600),
            records: 100_000,
        }
    }
}

/// A record's place: connector, entity, key.
type Place = (ConnectorId, String, String);

struct Row {
    record: Value,
    version: String,
    at: Instant,
    /// Insertion number, to tell a stale `order` entry from the live one.
    seq: u64,
}

#[derive(Default)]
struct Table {
    rows: HashMap<String, Row>,
    /// field → value text → keys, built for a field the first time a find
    /// asks by it and kept up to date from then on.
    indexes: HashMap<String, HashMap<String, BTreeSet<String>>>,
}

impl Table {
    fn unindex(&mut self, key: &str) {
        let Some(row) = self.rows.get(key) else {
            return;
        };
        for (field, index) in &mut self.indexes {
            if let Some(text) = row.record.get(field).and_then(text)
                && let Some(keys) = index.get_mut(&text)
            {
                keys.remove(key);
                if keys.is_empty() {
                    index.remove(&text);
                }
            }
        }
    }

    fn index(&mut self, key: &str) {
        let Some(row) = self.rows.get(key) else {
            return;
        };
        for (field, index) in &mut self.indexes {
            if let Some(text) = row.record.get(field).and_then(text) {
                index.entry(text).or_default().insert(key.to_string());
            }
        }
    }

    fn remove(&mut self, key: &str) -> bool {
        self.unindex(key);
        self.rows.remove(key).is_some()
    }
}

#[derive(Default)]
struct Inner {
    tables: HashMap<(ConnectorId, String), Table>,
    order: VecDeque<(Place, u64)>,
    len: usize,
    seq: u64,
}

impl Inner {
    fn remove(&mut self, place: &Place) {
        let (c, entity, key) = place;
        if let Some(table) = self.tables.get_mut(&(*c, entity.clone()))
            && table.remove(key)
        {
            self.len -= 1;
        }
    }
}

/// The text a value is indexed and compared by (`None`: not comparable).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// CRM records by connector, entity and key (see the module documentation).
pub struct Mirror {
    limits: MirrorLimits,
    inner: Mutex<Inner>,
}

impl Mirror {
    /// An empty mirror.
    pub fn new(limits: MirrorLimits) -> Mirror {
        Mirror {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// False when the time to live is zero.
    pub fn enabled(&self) -> bool {
        !self.limits.ttl.is_zero() && self.limits.records > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fresh(&self, row: &Row) -> bool {
        row.at.elapsed() < self.limits.ttl
    }

    /// The record at a key and its version, while fresh.
    pub fn get(&self, c: ConnectorId, entity: &str, key: &str) -> Option<(Value, String)> {
        let inner = self.lock();
        let row = inner.tables.get(&(c, entity.to_string()))?.rows.get(key)?;
        self.fresh(row)
            .then(|| (row.record.clone(), row.version.clone()))
    }

    /// A fresh record whose fields equal every `where` value, with its key and
    /// version.
    pub fn find(
        &self,
        c: ConnectorId,
        entity: &str,
        where_fields: &[(String, Value)],
    ) -> Option<(String, Value, String)> {
        let (first, first_value) = where_fields.first()?;
        let wanted: Vec<(&str, String)> = where_fields
            .iter()
            .map(|(f, v)| text(v).map(|t| (f.as_str(), t)))
            .collect::<Option<_>>()?;
        let first_text = text(first_value)?;
        let mut inner = self.lock();
        let table = inner.tables.get_mut(&(c, entity.to_string()))?;
        if !table.indexes.contains_key(first) {
            let mut index: HashMap<String, BTreeSet<String>> = HashMap::new();
            for (key, row) in &table.rows {
                if let Some(t) = row.record.get(first).and_then(text) {
                    index.entry(t).or_default().insert(key.clone());
                }
            }
            table.indexes.insert(first.clone(), index);
        }
        let keys = table.indexes.get(first)?.get(&first_text)?;
        keys.iter().find_map(|key| {
            let row = table.rows.get(key)?;
            let all = wanted
                .iter()
                .all(|(f, t)| row.record.get(*f).and_then(text).as_deref() == Some(t.as_str()));
            (all && self.fresh(row)).then(|| (key.clone(), row.record.clone(), row.version.clone()))
        })
    }

    /// Holds `record` at `key` with `version` (replacing what was there).
    pub fn put(&self, c: ConnectorId, entity: &str, key: &str, version: String, record: Value) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.lock();
        inner.seq += 1;
        let seq = inner.seq;
        let table = inner.tables.entry((c, entity.to_string())).or_default();
        let existed = table.remove(key);
        table.rows.insert(
            key.to_string(),
            Row {
                record,
                version,
                at: Instant::now(),
                seq,
            },
        );
        table.index(key);
        if !existed {
            inner.len += 1;
        }
        inner
            .order
            .push_back(((c, entity.to_string(), key.to_string()), seq));
        while inner.len > self.limits.records {
            let Some((place, seq)) = inner.order.pop_front() else {
                break;
            };
            let live = inner
                .tables
                .get(&(place.0, place.1.clone()))
                .and_then(|t| t.rows.get(&place.2))
                .is_some_and(|r| r.seq == seq);
            if live {
                inner.remove(&place);
            }
        }
        // Entries of replaced rows pile up in `order`; compact now and then.
        if inner.order.len() > 2 * inner.len + 1024 {
            let Inner { tables, order, .. } = &mut *inner;
            order.retain(|((c, e, k), seq)| {
                tables
                    .get(&(*c, e.clone()))
                    .and_then(|t| t.rows.get(k))
                    .is_some_and(|r| r.seq == *seq)
            });
        }
    }

    /// Drops the record at a key.
    pub fn evict(&self, c: ConnectorId, entity: &str, key: &str) {
        self.lock()
            .remove(&(c, entity.to_string(), key.to_string()));
    }

    /// What the CRM poller saw: a record at `version`. A mirrored record at
    /// another version is dropped.
    pub fn observe(&self, c: ConnectorId, entity: &str, key: &str, version: &str) {
        let mut inner = self.lock();
        let moved = inner
            .tables
            .get(&(c, entity.to_string()))
            .and_then(|t| t.rows.get(key))
            .is_some_and(|r| r.version != version);
        if moved {
            inner.remove(&(c, entity.to_string(), key.to_string()));
        }
    }
}

/// The version a record carries: its `@odata.etag`, else its entity's modified
/// stamp field.
fn version_of(record: &Value, modified_field: Option<&str>) -> Option<String> {
    let v = record
        .get("@odata.etag")
        .or_else(|| modified_field.and_then(|f| record.get(f)))?;
    text(v).filter(|t| !t.is_empty())
}

/// One run's view of the connectors through the mirror: reads served from it
/// when fresh, every CRM record read or written put back into it, and writes to
/// records served from it made conditional on the mirrored version.
pub struct Cached<'a> {
    inner: &'a dyn ConnectorSet,
    mirror: &'a Mirror,
    project: &'a CompiledProject,
    /// Records this run read from the mirror, with the version served.
    served: Mutex<HashMap<Place, String>>,
    /// Every CRM record this run read or wrote.
    touched: Mutex<HashSet<Place>>,
    hits: std::sync::atomic::AtomicU64,
}

impl<'a> Cached<'a> {
    /// A run's view over `inner`.
    pub fn new(
        inner: &'a dyn ConnectorSet,
        mirror: &'a Mirror,
        project: &'a CompiledProject,
    ) -> Cached<'a> {
        Cached {
            inner,
            mirror,
            project,
            served: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashSet::new()),
            hits: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Requests answered from the mirror.
    pub fn hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops every record this run read or wrote (after a failed run, so that
    /// its retry reads fresh).
    pub fn forget(&self) {
        let touched = std::mem::take(&mut *self.touched.lock().unwrap_or_else(|p| p.into_inner()));
        for (c, entity, key) in touched {
            self.mirror.evict(c, &entity, &key);
        }
    }

    fn mirrored(&self, c: ConnectorId) -> bool {
        self.mirror.enabled()
            && matches!(
                self.project.connector(c).spec.kind,
                ConnectorKind::Dataverse | ConnectorKind::Salesforce
            )
    }

    fn touch(&self, place: Place) {
        self.touched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(place);
    }

    fn serve(&self, place: Place, version: String) {
        self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.touch(place.clone());
        self.served
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(place, version);
    }

    fn served_version(&self, place: &Place) -> Option<String> {
        self.served
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(place)
            .cloned()
    }

    /// Puts a record read or written into the mirror (or drops the place when
    /// the record carries no key or version).
    fn keep(&self, c: ConnectorId, entity: &str, record: &Value) {
        let connector = self.project.connector(c);
        let Some(key) = record.get(connector.key_field(entity)).and_then(text) else {
            return;
        };
        let modified = connector
            .spec
            .entities
            .get(entity)
            .and_then(|e| e.modified_field.clone());
        let place = (c, entity.to_string(), key.clone());
        match version_of(record, modified.as_deref()) {
            Some(version) => self.mirror.put(c, entity, &key, version, record.clone()),
            None => self.mirror.evict(c, entity, &key),
        }
        self.touch(place);
    }

    async fn run(&self, mut request: Request) -> Result<Value, ConnectorError> {
        let c = request.connector();
        if !self.mirrored(c) {
            return self.inner.execute(request).await;
        }
        match &mut request {
            Request::Get {
                entity,
                key,
                select,
                ..
            } => {
                let (entity, key, whole) = (entity.clone(), key.clone(), select.is_empty());
                if whole && let Some((record, version)) = self.mirror.get(c, &entity, &key) {
                    self.serve((c, entity, key), version);
                    return Ok(record);
                }
                let answer = self.inner.execute(request).await;
                match &answer {
                    Ok(record) if whole => self.keep(c, &entity, record),
                    Err(e) if e.kind == ErrorKind::NotFound => self.mirror.evict(c, &entity, &key),
                    _ => {}
                }
                answer
            }
            Request::Find {
                entity,
                where_fields,
                select,
                limit,
                ..
            } => {
                let (entity, whole) = (entity.clone(), select.is_empty());
                if whole
                    && *limit == Some(1)
                    && let Some((key, record, version)) = self.mirror.find(c, &entity, where_fields)
                {
                    self.serve((c, entity, key), version);
                    return Ok(Value::Array(vec![record]));
                }
                let answer = self.inner.execute(request).await;
                if whole && let Ok(Value::Array(records)) = &answer {
                    for r in records {
                        self.keep(c, &entity, r);
                    }
                }
                answer
            }
            Request::Update {
                entity,
                key,
                if_match,
                ..
            } => {
                let (entity, key) = (entity.clone(), key.clone());
                let served = self.served_version(&(c, entity.clone(), key.clone()));
                if if_match.is_none() {
                    if_match.clone_from(&served);
                }
                let answer = self.inner.execute(request).await;
                self.settle(c, &entity, &key, served.is_some(), answer)
            }
            Request::Create { entity, .. } | Request::Upsert { entity, .. } => {
                let entity = entity.clone();
                let answer = self.inner.execute(request).await;
                if let Ok(record) = &answer {
                    self.keep(c, &entity, record);
                }
                answer
            }
            Request::Call { operation, .. } => {
                let writes = self.inner.writes(c, operation);
                let answer = self.inner.execute(request).await;
                if writes {
                    // An operation may change any record the run knows of.
                    let touched: Vec<Place> = self
                        .touched
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .filter(|p| p.0 == c)
                        .cloned()
                        .collect();
                    for (c, entity, key) in touched {
                        self.mirror.evict(c, &entity, &key);
                    }
                }
                answer
            }
        }
    }

    /// After a write: the stored record goes into the mirror; a refused write
    /// of a record served from the mirror is a stale read.
    fn settle(
        &self,
        c: ConnectorId,
        entity: &str,
        key: &str,
        served: bool,
        answer: Result<Value, ConnectorError>,
    ) -> Result<Value, ConnectorError> {
        match answer {
            Ok(record) => {
                self.keep(c, entity, &record);
                Ok(record)
            }
            Err(e) => {
                self.mirror.evict(c, entity, key);
                if served && matches!(e.kind, ErrorKind::Conflict | ErrorKind::NotFound) {
                    Err(e.into_stale())
                } else {
                    Err(e)
                }
            }
        }
    }
}

impl ConnectorSet for Cached<'_> {
    fn execute<'a>(&'a self, request: Request) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        Box::pin(self.run(request))
    }

    fn writes(&self, connector: ConnectorId, operation: &str) -> bool {
        self.inner.writes(connector, operation)
    }
}

#[cfg(test)]
#[path = "mirror_tests.rs"]
mod tests;
