//! An in-process connector set over records held in memory: what `cosync test`
//! runs flows against (seeded from a test's `given`), and what `cosync run
//! --fixtures` uses. It keeps the semantics flows rely on: keys assigned on
//! create, field equality for find, JSON-pointer updates for nested Partner Center
//! fields, eTags and `If-Match` conflicts, not-found errors.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::registry::builtin_operations;
use crate::compile::{CompiledProject, ConnectorId};
use crate::mapping::coerce::scalar_text;
use crate::runtime::connectors::{BoxFuture, ConnectorError, ConnectorSet, ErrorKind, Request};
use crate::runtime::{read_field, write_field};
use crate::spec::connector::{ConnectorKind, HttpMethod};

struct Connector {
    name: String,
    kind: ConnectorKind,
    keys: HashMap<String, String>,
    writing_operations: Vec<String>,
}

#[derive(Default)]
struct State {
    tables: HashMap<(usize, String), Vec<Value>>,
    next_id: u64,
    log: Vec<(String, Request)>,
    calls: HashMap<(usize, String), Value>,
}

/// Records in memory, per connector and entity.
pub struct MemoryConnectorSet {
    connectors: Vec<Connector>,
    state: Mutex<State>,
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    a == b || scalar_text(a).eq_ignore_ascii_case(&scalar_text(b))
}

impl MemoryConnectorSet {
    /// An empty set with the project's connectors.
    pub fn new(project: &CompiledProject) -> MemoryConnectorSet {
        let connectors = project
            .connectors
            .iter()
            .map(|c| {
                let keys = c
                    .spec
                    .entities
                    .iter()
                    .map(|(n, e)| (n.clone(), e.key.clone().unwrap_or_else(|| "id".into())))
                    .collect();
                let mut writing_operations: Vec<String> = builtin_operations(c.spec.kind)
                    .iter()
                    .filter(|o| o.writes)
                    .map(|o| o.name.to_string())
                    .collect();
                writing_operations.extend(
                    c.spec
                        .operations
                        .iter()
                        .filter(|(_, o)| o.method != HttpMethod::Get)
                        .map(|(n, _)| n.clone()),
                );
                Connector {
                    name: c.name.clone(),
                    kind: c.spec.kind,
                    keys,
                    writing_operations,
                }
            })
            .collect();
        MemoryConnectorSet {
            connectors,
            state: Mutex::new(State::default()),
        }
    }

    fn index(&self, connector: &str) -> Option<usize> {
        self.connectors.iter().position(|c| c.name == connector)
    }

    fn key_field(&self, connector: usize, entity: &str) -> String {
        self.connectors
            .get(connector)
            .and_then(|c| c.keys.get(entity).cloned())
            .unwrap_or_else(|| "id".into())
    }

    /// Adds a record (as a user would have created it).
    pub fn insert(&self, connector: &str, entity: &str, record: Value) -> Result<(), String> {
        let index = self
            .index(connector)
            .ok_or_else(|| format!("unknown connector `{connector}`"))?;
        if !record.is_object() {
            return Err(format!("a {connector}/{entity} record must be a mapping"));
        }
        let mut state = self
            .state
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        let key = self.key_field(index, entity);
        let mut record = record;
        if read_field(&record, &key).is_null() {
            state.next_id += 1;
            let id = format!("00000000-0000-4000-8000-{:012}", state.next_id);
            write_field(&mut record, &key, Value::String(id));
        }
        state
            .tables
            .entry((index, entity.to_string()))
            .or_default()
            .push(record);
        Ok(())
    }

    /// The records of an entity.
    pub fn records(&self, connector: &str, entity: &str) -> Vec<Value> {
        let Some(index) = self.index(connector) else {
            return Vec::new();
        };
        self.state
            .lock()
            .map(|s| {
                s.tables
                    .get(&(index, entity.to_string()))
                    .cloned()
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// Sets the result `call`s of `operation` on `connector` return (default `{}`).
    pub fn set_call_result(
        &self,
        connector: &str,
        operation: &str,
        result: Value,
    ) -> Result<(), String> {
        let index = self
            .index(connector)
            .ok_or_else(|| format!("unknown connector `{connector}`"))?;
        let mut state = self
            .state
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        state.calls.insert((index, operation.to_string()), result);
        Ok(())
    }

    /// Every request received, with its connector name.
    pub fn requests(&self) -> Vec<(String, Request)> {
        self.state.lock().map(|s| s.log.clone()).unwrap_or_default()
    }

    fn handle(&self, request: Request) -> Result<Value, ConnectorError> {
        let index = request.connector().0;
        let connector = self
            .connectors
            .get(index)
            .ok_or_else(|| ConnectorError::new(ErrorKind::Invalid, "unknown connector"))?;
        let mut state = self
            .state
            .lock()
            .map_err(|_| ConnectorError::new(ErrorKind::Transient, "state lock poisoned"))?;
        state.log.push((connector.name.clone(), request.clone()));
        let is_pc = connector.kind == ConnectorKind::PartnerCenter;
        match request {
            Request::Get { entity, key, .. } => {
                let key_field = self.key_field(index, &entity);
                state
                    .tables
                    .get(&(index, entity.clone()))
                    .and_then(|t| {
                        t.iter().find(|r| {
                            loose_eq(&read_field(r, &key_field), &Value::String(key.clone()))
                        })
                    })
                    .cloned()
                    .ok_or_else(|| ConnectorError {
                        kind: ErrorKind::NotFound,
                        message: format!("{entity} `{key}` does not exist"),
                        status: Some(404),
                        stale: false,
                    })
            }
            Request::Find {
                entity,
                where_fields,
                limit,
                ..
            } => {
                let rows = state
                    .tables
                    .get(&(index, entity))
                    .cloned()
                    .unwrap_or_default();
                let found: Vec<Value> = rows
                    .into_iter()
                    .filter(|r| {
                        where_fields
                            .iter()
                            .all(|(k, v)| loose_eq(&read_field(r, k), v))
                    })
                    .take(limit.map_or(usize::MAX, |l| l as usize))
                    .collect();
                Ok(Value::Array(found))
            }
            Request::Create { entity, record, .. } => {
                let key_field = self.key_field(index, &entity);
                let mut record = record;
                state.next_id += 1;
                let n = state.next_id;
                if read_field(&record, &key_field).is_null() {
                    write_field(
                        &mut record,
                        &key_field,
                        Value::String(format!("00000000-0000-4000-8000-{n:012}")),
                    );
                }
                if is_pc {
                    write_field(&mut record, "eTag", Value::String(format!("\"{n}\"")));
                }
                state
                    .tables
                    .entry((index, entity))
                    .or_default()
                    .push(record.clone());
                Ok(record)
            }
            Request::Update {
                entity,
                key,
                changes,
                if_match,
                ..
            } => {
                let key_field = self.key_field(index, &entity);
                let next = state.next_id + 1;
                let table = state.tables.entry((index, entity.clone())).or_default();
                let Some(row) = table
                    .iter_mut()
                    .find(|r| loose_eq(&read_field(r, &key_field), &Value::String(key.clone())))
                else {
                    return Err(ConnectorError {
                        kind: ErrorKind::NotFound,
                        message: format!("{entity} `{key}` does not exist"),
                        status: Some(404),
                        stale: false,
                    });
                };
                if let (Some(expected), Some(current)) =
                    (if_match.as_deref(), row.get("eTag").and_then(Value::as_str))
                    && expected != "*"
                    && expected != current
                {
                    return Err(ConnectorError {
                        kind: ErrorKind::Conflict,
                        message: "the record changed since it was read (eTag mismatch)".into(),
                        status: Some(412),
                        stale: false,
                    });
                }
                if let Value::Object(fields) = changes {
                    for (k, v) in fields {
                        write_field(row, &k, v);
                    }
                }
                if is_pc {
                    write_field(row, "eTag", Value::String(format!("\"{next}\"")));
                }
                let out = row.clone();
                state.next_id = next;
                Ok(out)
            }
            Request::Upsert {
                entity,
                match_fields,
                record,
                ..
            } => {
                let key_field = self.key_field(index, &entity);
                state.next_id += 1;
                let n = state.next_id;
                let table = state.tables.entry((index, entity)).or_default();
                match table.iter_mut().find(|r| {
                    match_fields
                        .iter()
                        .all(|(k, v)| loose_eq(&read_field(r, k), v))
                }) {
                    Some(row) => {
                        if let Value::Object(fields) = record {
                            for (k, v) in fields {
                                write_field(row, &k, v);
                            }
                        }
                        Ok(row.clone())
                    }
                    None => {
                        let mut record = record;
                        for (k, v) in match_fields {
                            write_field(&mut record, &k, v);
                        }
                        if read_field(&record, &key_field).is_null() {
                            write_field(
                                &mut record,
                                &key_field,
                                Value::String(format!("00000000-0000-4000-8000-{n:012}")),
                            );
                        }
                        table.push(record.clone());
                        Ok(record)
                    }
                }
            }
            Request::Call { operation, .. } => Ok(state
                .calls
                .get(&(index, operation))
                .cloned()
                .unwrap_or_else(|| Value::Object(serde_json::Map::new()))),
        }
    }
}

impl ConnectorSet for MemoryConnectorSet {
    fn execute<'a>(&'a self, request: Request) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        Box::pin(async move { self.handle(request) })
    }

    fn writes(&self, connector: ConnectorId, operation: &str) -> bool {
        self.connectors
            .get(connector.0)
            .is_some_and(|c| c.writing_operations.iter().any(|o| o == operation))
    }
}
