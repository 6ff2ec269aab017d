//! The interpreter's effects: connector requests (counted against the budget and
//! reported), writes (planned instead of made in a dry run), projections and the
//! lookups they need.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::step::{eval_shared, eval_values, key_text};
use super::{Exec, Fail, Frame};
use crate::compile::flow::Projection;
use crate::expr::value::CompiledValue;
use crate::mapping::{LookupRequest, Projected, ResolvedLookups, lookup_key};
use crate::runtime::connectors::{ErrorKind, Request};
use crate::runtime::observer::{CallRecord, StepError, WriteRecord};

/// Placeholder key of a record that a dry run only planned to create.
pub const PLANNED_KEY: &str = "(planned)";

/// Error code of a run stopped because a connector found its reads stale
/// ([`crate::runtime::ConnectorError::stale`]); such a run is run again.
pub const STALE_READ: &str = "stale-read";

fn error_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not-found",
        ErrorKind::Conflict => "conflict",
        ErrorKind::Throttled => "throttled",
        ErrorKind::Transient => "unavailable",
        ErrorKind::Invalid => "invalid-request",
        ErrorKind::Unauthorized => "unauthorized",
    }
}

impl Exec<'_> {
    fn connector_name(&self, request: &Request) -> String {
        self.project.connector(request.connector()).name.clone()
    }

    /// Sends one request.
    pub(super) async fn request(&self, step: &str, request: Request) -> Result<Value, Fail> {
        self.count(&self.calls, self.budget.max_calls, "connector calls")
            .map_err(Fail::Halt)?;
        let connector = self.connector_name(&request);
        let action = request.action().to_string();
        let target = match &request {
            Request::Call { operation, .. } => operation.clone(),
            Request::Get { entity, .. }
            | Request::Find { entity, .. }
            | Request::Create { entity, .. }
            | Request::Update { entity, .. }
            | Request::Upsert { entity, .. } => entity.clone(),
        };
        let started = Instant::now();
        let result = self.connectors.execute(request).await;
        let record = CallRecord {
            step: step.to_string(),
            connector: connector.clone(),
            action: action.clone(),
            target: target.clone(),
            ok: result.is_ok(),
            duration_ms: started.elapsed().as_millis() as u64,
        };
        self.observe(|o| o.call(record));
        result.map_err(|e| {
            let error = StepError::new(
                if e.stale {
                    STALE_READ
                } else {
                    error_code(e.kind)
                },
                format!("{connector} {action} {target}: {}", e.message),
            );
            if e.stale {
                // Not a failure of the flow: its reads were out of date. No
                // handler runs; the caller runs the flow again on fresh reads.
                Fail::Halt(super::Halt::Fatal(error))
            } else {
                Fail::Step(error)
            }
        })
    }

    /// Sends (or, in a dry run, plans) one write and reports it.
    pub(super) async fn write(&self, step: &str, request: Request) -> Result<Value, Fail> {
        let connector = self.connector_name(&request);
        let (entity, action, operation, key, fields) = match &request {
            Request::Create { entity, record, .. } => {
                (Some(entity.clone()), "create", None, None, record.clone())
            }
            Request::Update {
                entity,
                key,
                changes,
                ..
            } => (
                Some(entity.clone()),
                "update",
                None,
                Some(key.clone()),
                changes.clone(),
            ),
            Request::Upsert {
                entity,
                record,
                match_fields,
                ..
            } => {
                let key = match_fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", key_text(v)))
                    .collect::<Vec<_>>()
                    .join(",");
                (
                    Some(entity.clone()),
                    "upsert",
                    None,
                    Some(key),
                    record.clone(),
                )
            }
            Request::Call {
                operation, inputs, ..
            } => (None, "call", Some(operation.clone()), None, inputs.clone()),
            Request::Get { .. } | Request::Find { .. } => return self.request(step, request).await,
        };
        let mut record = WriteRecord {
            step: step.to_string(),
            connector,
            entity: entity.clone(),
            action: action.to_string(),
            operation,
            key: key.clone(),
            fields: fields.clone(),
            before: None,
            planned: self.dry_run,
        };
        if !self.dry_run {
            let out = self.request(step, request).await?;
            self.observe(|o| o.write(record));
            return Ok(out);
        }
        // Dry run: read what would change, plan the write, answer as the service would.
        let out = match &request {
            Request::Update {
                connector,
                entity,
                key,
                changes,
                ..
            } => {
                let get = Request::Get {
                    connector: *connector,
                    entity: entity.clone(),
                    key: key.clone(),
                    select: Vec::new(),
                };
                let current = self.request(step, get).await.ok();
                if let (Some(cur), Value::Object(ch)) = (&current, changes) {
                    record.before = Some(Value::Object(
                        ch.keys().map(|k| (k.clone(), read_field(cur, k))).collect(),
                    ));
                }
                let mut merged = current.unwrap_or_else(|| json!({}));
                if let Value::Object(ch) = changes {
                    for (k, v) in ch {
                        write_field(&mut merged, k, v.clone());
                    }
                }
                merged
            }
            Request::Create {
                connector,
                entity,
                record: fields,
                ..
            }
            | Request::Upsert {
                connector,
                entity,
                record: fields,
                ..
            } => {
                let mut planned = fields.clone();
                let key_field = self.project.connector(*connector).key_field(entity);
                write_field(&mut planned, &key_field, Value::String(PLANNED_KEY.into()));
                planned
            }
            _ => json!({}),
        };
        self.observe(|o| o.write(record));
        Ok(out)
    }

    /// Evaluates a projection's source and projects it (resolving lookups first).
    pub(super) async fn project(
        &self,
        step: &str,
        projection: &Projection,
        frame: &mut Frame,
        may_create: bool,
    ) -> Result<(Projected, Arc<Value>), Fail> {
        let source = eval_shared(&projection.from, frame, "from")?;
        if !source.is_object() {
            return Err(StepError::new(
                "type",
                format!(
                    "`from` must be a record, found {}",
                    if source.is_null() {
                        "nothing (null)".to_string()
                    } else {
                        source.to_string()
                    }
                ),
            )
            .into());
        }
        let lookups = self
            .lookups_for(step, projection, &source, may_create)
            .await?;
        let projector = self.project.projector(projection.mapping);
        let projected = projector
            .project_shared(projection.target, &source, &lookups)
            .map_err(|e| StepError::new("mapping", e.to_string()))?;
        Ok((projected, source))
    }

    /// Performs the lookups a projection of `source` needs.
    pub(super) async fn lookups_for(
        &self,
        step: &str,
        projection: &Projection,
        source: &Arc<Value>,
        may_create: bool,
    ) -> Result<ResolvedLookups, Fail> {
        let projector = self.project.projector(projection.mapping);
        let mut resolved = ResolvedLookups::default();
        for request in projector.lookup_requests_shared(projection.target, source) {
            match request {
                LookupRequest::Match {
                    lookup,
                    fields,
                    create,
                } => {
                    let key = lookup_key(&lookup, &fields);
                    if resolved.matches.contains_key(&key) {
                        continue;
                    }
                    let key_field = self
                        .project
                        .connector(lookup.connector)
                        .key_field(&lookup.entity);
                    let returns = lookup.returns.clone().unwrap_or(key_field.clone());
                    let find = Request::Find {
                        connector: lookup.connector,
                        entity: lookup.entity.clone(),
                        where_fields: fields.clone(),
                        select: Vec::new(),
                        limit: Some(1),
                    };
                    let found = self.request(step, find).await?;
                    let mut id = found
                        .as_array()
                        .and_then(|a| a.first())
                        .and_then(|r| r.get(&returns))
                        .cloned()
                        .filter(|v| !v.is_null());
                    if id.is_none() && create.is_some() && !may_create {
                        // Only writing steps create referenced records.
                        resolved.deferred.insert(key);
                        continue;
                    }
                    if id.is_none()
                        && let Some(create) = create
                    {
                        let mut record = serde_json::Map::new();
                        record.extend(create);
                        let created = self
                            .write(
                                step,
                                Request::Create {
                                    connector: lookup.connector,
                                    entity: lookup.entity.clone(),
                                    record: Value::Object(record),
                                },
                            )
                            .await?;
                        id = created.get(&returns).cloned();
                    }
                    resolved.matches.insert(key, id);
                }
                LookupRequest::Reverse { lookup, id } => {
                    let key = ResolvedLookups::reverse_key(&lookup, &id);
                    if resolved.reverses.contains_key(&key) {
                        continue;
                    }
                    let get = Request::Get {
                        connector: lookup.connector,
                        entity: lookup.entity.clone(),
                        key: key_text(&id),
                        select: Vec::new(),
                    };
                    let value = match self.request(step, get).await {
                        Ok(record) => lookup.reverse.as_ref().and_then(|f| record.get(f).cloned()),
                        Err(Fail::Step(e)) if e.code == "not-found" => None,
                        Err(e) => return Err(e),
                    };
                    resolved.reverses.insert(key, value);
                }
            }
        }
        Ok(resolved)
    }

    /// The record a create/upsert writes: the projection, then `values` over it.
    pub(super) async fn record_to_write(
        &self,
        step: &str,
        projection: Option<&Projection>,
        values: &[(String, CompiledValue)],
        frame: &mut Frame,
    ) -> Result<Value, Fail> {
        let mut record = match projection {
            Some(p) => self.project(step, p, frame, true).await?.0.to_record(),
            None => json!({}),
        };
        for (k, v) in eval_values(values, frame, "values")? {
            write_field(&mut record, &k, v);
        }
        Ok(record)
    }
}

/// Reads a field by name, or by JSON pointer when it starts with `/`.
pub fn read_field(record: &Value, key: &str) -> Value {
    if key.starts_with('/') {
        crate::source::get_pointer(record, key).cloned()
    } else {
        record.get(key).cloned()
    }
    .unwrap_or(Value::Null)
}

/// Writes a field by name, or by JSON pointer when it starts with `/`.
pub fn write_field(record: &mut Value, key: &str, value: Value) {
    if key.starts_with('/') {
        crate::expr::path::set_pointer(record, key, value);
    } else if let Value::Object(m) = record {
        m.insert(key.to_string(), value);
    } else {
        *record = json!({ key: value });
    }
}
