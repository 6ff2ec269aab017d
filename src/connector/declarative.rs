//! The declarative `http` kind: a CRM without Rust. Every operation is a request
//! template (`operations.rs`); an entity's `actions` name the operations behind
//! get / find / create / update, and upsert is find-then-write. Finds filter by
//! field equality on the client too, so an API that ignores a filter still
//! answers with the in-memory semantics.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Connector;
use super::http::Connection;
use super::operations::{Keep, Operations};
use super::set::{BuildContext, ConnectorConfigError};
use super::support::{filter_limit, invalid, not_found, text_of};
use super::wire::Dialect;
use crate::compile::CompiledConnector;
use crate::runtime::connectors::{BoxFuture, ConnectorError, ErrorKind, Request};
use crate::spec::connector::EntityActions;
use crate::spec::project::LimitsSpec;

/// A connector of the `http` kind.
pub(crate) struct Declarative {
    name: String,
    conn: Connection,
    ops: Operations,
    actions: BTreeMap<String, EntityActions>,
    keys: BTreeMap<String, String>,
}

/// Builds an `http` connector.
pub(crate) fn build(cx: &BuildContext<'_>) -> Result<Box<dyn Connector>, ConnectorConfigError> {
    let c: &CompiledConnector = cx.connector;
    Ok(Box::new(Declarative {
        name: c.name.clone(),
        conn: Connection::new(
            &c.name,
            Dialect::Generic,
            cx.client,
            cx.connection,
            &LimitsSpec::default(),
        ),
        ops: Operations::compile(cx.env, &c.name, &c.spec)?,
        actions: c
            .spec
            .entities
            .iter()
            .filter_map(|(n, e)| e.actions.clone().map(|a| (n.clone(), a)))
            .collect(),
        keys: c
            .spec
            .entities
            .keys()
            .map(|e| (e.clone(), c.key_field(e)))
            .collect(),
    }))
}

impl Declarative {
    fn action(&self, entity: &str, which: &str) -> Result<&str, ConnectorError> {
        let actions = self.actions.get(entity);
        let op = match which {
            "get" => actions.and_then(|a| a.get.as_deref()),
            "find" => actions.and_then(|a| a.find.as_deref()),
            "create" => actions.and_then(|a| a.create.as_deref()),
            _ => actions.and_then(|a| a.update.as_deref()),
        };
        op.ok_or_else(|| {
            invalid(format!(
                "entity `{entity}` of connector `{}` has no `{which}` action (add it under `actions:`)",
                self.name
            ))
        })
    }

    fn key_field(&self, entity: &str) -> String {
        self.keys
            .get(entity)
            .cloned()
            .unwrap_or_else(|| "id".into())
    }

    async fn get(
        &self,
        entity: &str,
        key: &str,
        select: &[String],
    ) -> Result<Value, ConnectorError> {
        let op = self.action(entity, "get")?;
        let inputs = json!({"key": key, "entity": entity, "select": select});
        match self.ops.run(&self.conn, op, &inputs, None).await {
            Ok((Value::Array(items), _)) => items
                .into_iter()
                .next()
                .ok_or_else(|| not_found(entity, key)),
            Ok((Value::Null, _)) => Err(not_found(entity, key)),
            Ok((v, _)) => Ok(v),
            Err(e) if e.kind == ErrorKind::NotFound => Err(ConnectorError {
                message: format!("{entity} `{key}` does not exist: {}", e.message),
                ..e
            }),
            Err(e) => Err(e),
        }
    }

    async fn find(
        &self,
        entity: &str,
        where_fields: &[(String, Value)],
        select: &[String],
        limit: Option<u32>,
    ) -> Result<Value, ConnectorError> {
        let op = self.action(entity, "find")?;
        let filter: serde_json::Map<String, Value> = where_fields.iter().cloned().collect();
        let inputs = json!({"where": filter, "entity": entity, "select": select, "limit": limit});
        let keep = Keep {
            where_fields,
            limit,
        };
        let (found, _) = self.ops.run(&self.conn, op, &inputs, Some(keep)).await?;
        let rows = match found {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            other => vec![other],
        };
        Ok(Value::Array(filter_limit(rows, where_fields, limit)))
    }

    async fn after_write(
        &self,
        entity: &str,
        result: (Value, Option<Value>),
        fallback: Value,
    ) -> Result<Value, ConnectorError> {
        match result {
            (v @ Value::Object(_), _) => Ok(v),
            (_, id) => {
                let key_field = self.key_field(entity);
                let key = id
                    .or_else(|| fallback.get(&key_field).cloned())
                    .and_then(|k| text_of(&k));
                match key {
                    Some(k) if self.action(entity, "get").is_ok() => {
                        self.get(entity, &k, &[]).await
                    }
                    Some(k) => {
                        let mut record = fallback;
                        crate::runtime::write_field(&mut record, &key_field, Value::String(k));
                        Ok(record)
                    }
                    None => Ok(fallback),
                }
            }
        }
    }

    async fn handle(&self, request: Request) -> Result<Value, ConnectorError> {
        match request {
            Request::Get {
                entity,
                key,
                select,
                ..
            } => self.get(&entity, &key, &select).await,
            Request::Find {
                entity,
                where_fields,
                select,
                limit,
                ..
            } => self.find(&entity, &where_fields, &select, limit).await,
            Request::Create { entity, record, .. } => {
                let op = self.action(&entity, "create")?;
                let out = self
                    .ops
                    .run(
                        &self.conn,
                        op,
                        &json!({"record": record, "entity": entity}),
                        None,
                    )
                    .await?;
                self.after_write(&entity, out, record).await
            }
            Request::Update {
                entity,
                key,
                changes,
                if_match,
                ..
            } => {
                let op = self.action(&entity, "update")?;
                let inputs =
                    json!({"key": key, "changes": changes, "if_match": if_match, "entity": entity});
                let out = self.ops.run(&self.conn, op, &inputs, None).await?;
                let mut fallback = json!({});
                crate::runtime::write_field(
                    &mut fallback,
                    &self.key_field(&entity),
                    Value::String(key),
                );
                if let Value::Object(m) = &changes {
                    for (k, v) in m {
                        crate::runtime::write_field(&mut fallback, k, v.clone());
                    }
                }
                self.after_write(&entity, out, fallback).await
            }
            Request::Upsert {
                connector,
                entity,
                match_fields,
                record,
            } => {
                let found = self.find(&entity, &match_fields, &[], Some(1)).await?;
                let key_field = self.key_field(&entity);
                let existing = found
                    .as_array()
                    .and_then(|a| a.first())
                    .map(|r| crate::runtime::read_field(r, &key_field));
                match existing.as_ref().and_then(text_of) {
                    Some(key) => {
                        Box::pin(self.handle(Request::Update {
                            connector,
                            entity,
                            key,
                            changes: record,
                            if_match: None,
                        }))
                        .await
                    }
                    None => {
                        let mut record = record;
                        for (k, v) in match_fields {
                            crate::runtime::write_field(&mut record, &k, v);
                        }
                        Box::pin(self.handle(Request::Create {
                            connector,
                            entity,
                            record,
                        }))
                        .await
                    }
                }
            }
            Request::Call {
                operation, inputs, ..
            } => Ok(self.ops.run(&self.conn, &operation, &inputs, None).await?.0),
        }
    }
}

impl Connector for Declarative {
    fn execute<'a>(&'a self, request: Request) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        Box::pin(self.handle(request))
    }

    fn pull_metadata<'a>(
        &'a self,
        _entities: &'a [String],
    ) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        Box::pin(async move {
            Err(invalid(format!(
                "connector `{}` is declarative (`http`): its fields are the ones its definition declares; there is no metadata API to pull",
                self.name
            )))
        })
    }
}
