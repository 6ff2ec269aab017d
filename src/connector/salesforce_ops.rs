//! Salesforce's `call` operations, upserts and metadata: `soql_query`, `describe`,
//! `composite_update` (sObject collections, 200 records per request, larger lists
//! split), `upsert_by_external_id` (also behind `upsert` steps matching one custom
//! field: 201 created / 200 updated, else find-then-write); `pull_metadata` turns
//! `describe` answers into a connector definition's `entities:` section.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::http::{Call, segment};
use super::salesforce::{Salesforce, normalize};
use super::support::{input_flag, input_text, invalid, required_text, safe_name, text_of};
use crate::runtime::connectors::ConnectorError;

/// Most records of one sObject collections request.
const COLLECTION_SIZE: usize = 200;

impl Salesforce {
    /// Runs a built-in `call` operation.
    pub(super) async fn call(
        &self,
        operation: &str,
        inputs: &Value,
    ) -> Result<Value, ConnectorError> {
        let sobject = |inputs: &Value| -> Result<String, ConnectorError> {
            let entity = required_text(inputs, &["entity", "sobject", "type"], operation)?;
            self.sobject(&entity)
        };
        match operation {
            "soql_query" => {
                let soql = required_text(inputs, &["query", "q", "soql"], operation)?;
                let limit = input_text(inputs, &["limit"]).and_then(|l| l.parse().ok());
                Ok(Value::Array(self.query(&soql, limit).await?))
            }
            "modified_since" => self.modified_since(inputs).await,
            "describe" => {
                let url = self
                    .url(&format!("sobjects/{}/describe", sobject(inputs)?))
                    .await?;
                Ok(self.conn.send(Call::new(Method::GET, url)).await?.body)
            }
            "composite_update" => {
                let records = inputs
                    .get("records")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        invalid("composite_update needs the input `records` (a list)")
                    })?;
                self.composite_update(
                    &sobject(inputs)?,
                    records,
                    input_flag(inputs, "all_or_none"),
                )
                .await
            }
            "upsert_by_external_id" => {
                let entity = required_text(inputs, &["entity", "sobject", "type"], operation)?;
                let field = required_text(inputs, &["field", "external_id_field"], operation)?;
                let value = required_text(inputs, &["value", "external_id"], operation)?;
                let record = inputs.get("record").cloned().unwrap_or_else(|| json!({}));
                self.upsert_external(&entity, &field, &value, &record).await
            }
            other => Err(invalid(format!("Salesforce has no operation `{other}`"))),
        }
    }

    /// `PATCH .../composite/sobjects` in chunks of 200; the per-record results of
    /// every chunk, in order.
    async fn composite_update(
        &self,
        sobject: &str,
        records: &[Value],
        all_or_none: bool,
    ) -> Result<Value, ConnectorError> {
        let url = self.url("composite/sobjects").await?;
        let mut results = Vec::new();
        for chunk in records.chunks(COLLECTION_SIZE) {
            let mut batch = Vec::with_capacity(chunk.len());
            for record in chunk {
                let id = record
                    .get("Id")
                    .or_else(|| record.get("id"))
                    .and_then(text_of)
                    .ok_or_else(|| invalid("composite_update: every record needs its `Id`"))?;
                let mut body = match self.body(record, &["id"])? {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                body.insert("attributes".into(), json!({"type": sobject}));
                body.insert("id".into(), Value::String(id));
                batch.push(Value::Object(body));
            }
            let call = Call::new(Method::PATCH, url.clone())
                .json(json!({"allOrNone": all_or_none, "records": batch}));
            let reply = self.conn.send(call).await?;
            match reply.body {
                Value::Array(items) => results.extend(items),
                other => results.push(other),
            }
        }
        Ok(Value::Array(results))
    }

    /// The metadata snapshot of `entities` (every declared entity when empty).
    pub(super) async fn metadata(&self, entities: &[String]) -> Result<Value, ConnectorError> {
        let names = if entities.is_empty() {
            self.entities.names()
        } else {
            entities.to_vec()
        };
        let mut snapshot = Map::new();
        for name in names {
            let sobject = self.sobject(&name)?;
            let url = self.url(&format!("sobjects/{sobject}/describe")).await?;
            let describe = normalize(self.conn.send(Call::new(Method::GET, url)).await?.body);
            let mut fields = Map::new();
            for f in describe
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some((field, spec)) = field_spec(f) {
                    fields.insert(field, spec);
                }
            }
            snapshot.insert(
                name,
                json!({"path": sobject, "key": "Id", "fields": fields}),
            );
        }
        Ok(Value::Object(snapshot))
    }
}

impl Salesforce {
    /// Polling by watermark: records of `entity` modified at or after `since` (all
    /// records without it) that match `where`, oldest first with `Id` as
    /// tie-breaker, as `{records: [{id, modified_at, version}], watermark}`.
    async fn modified_since(&self, inputs: &Value) -> Result<Value, ConnectorError> {
        let entity = required_text(inputs, &["entity"], "modified_since")?;
        let modified = self
            .entities
            .modified_field(&entity)
            .unwrap_or_else(|| "SystemModstamp".to_string());
        let created = self
            .entities
            .created_field(&entity)
            .unwrap_or_else(|| "CreatedDate".to_string());
        let key = self.key_field(&entity);
        let where_fields = super::support::pairs(inputs.get("where"));
        let mut select = vec![key.clone(), modified.clone()];
        if !select.contains(&created) {
            select.push(created.clone());
        }
        let mut soql = self.soql(&entity, &where_fields, &select, None)?;
        if let Some(since) = input_text(inputs, &["since"]) {
            let at = chrono::DateTime::parse_from_rfc3339(&since)
                .map_err(|e| invalid(format!("`since` is not an RFC 3339 time: {e}")))?
                .with_timezone(&chrono::Utc);
            let clause = format!(
                "{modified} >= {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
            soql.push_str(if where_fields.is_empty() {
                " WHERE "
            } else {
                " AND "
            });
            soql.push_str(&clause);
        }
        soql.push_str(&format!(" ORDER BY {modified} ASC, {key} ASC"));
        let limit = input_text(inputs, &["limit"]).and_then(|l| l.parse::<usize>().ok());
        let mut records = Vec::new();
        let mut watermark = Value::Null;
        for row in self.query(&soql, limit).await? {
            let at = row.get(&modified).cloned().unwrap_or(Value::Null);
            if !at.is_null() {
                watermark = at.clone();
            }
            let created_at = row.get(&created).cloned().unwrap_or(Value::Null);
            records.push(json!({"id": row.get(&key).cloned().unwrap_or(Value::Null), "modified_at": at, "created_at": created_at, "version": at}));
        }
        Ok(json!({"records": records, "watermark": watermark}))
    }

    /// `PATCH .../sobjects/T/<field>/<value>`: the id written and whether it was
    /// created.
    pub(super) async fn upsert_external(
        &self,
        entity: &str,
        field: &str,
        value: &str,
        record: &Value,
    ) -> Result<Value, ConnectorError> {
        if !safe_name(field, &[]) {
            return Err(invalid(format!("`{field}` is not a Salesforce field name")));
        }
        let url = self
            .url(&format!(
                "sobjects/{}/{field}/{}",
                self.sobject(entity)?,
                segment(value)
            ))
            .await?;
        let reply = self
            .conn
            .send(Call::new(Method::PATCH, url).json(self.body(record, &[field])?))
            .await?;
        let mut answer = match reply.body {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        answer
            .entry("created")
            .or_insert(Value::Bool(reply.status == 201));
        answer.entry("success").or_insert(Value::Bool(true));
        Ok(Value::Object(answer))
    }

    pub(super) async fn upsert(
        &self,
        entity: &str,
        match_fields: &[(String, Value)],
        record: Value,
    ) -> Result<Value, ConnectorError> {
        if let [(field, value)] = match_fields
            && field.ends_with("__c")
            && let Some(v) = text_of(value)
        {
            match self.upsert_external(entity, field, &v, &record).await {
                Ok(answer) => {
                    let id = match answer.get("id").and_then(text_of) {
                        Some(id) => id,
                        None => self
                            .find_key(entity, match_fields)
                            .await?
                            .ok_or_else(|| invalid("the upsert answer has no id"))?,
                    };
                    return self.get(entity, &id, &[]).await;
                }
                // Not an external-id field: fall back to find-then-write.
                Err(e)
                    if matches!(e.status, Some(400 | 404))
                        && (e.message.contains("NOT_FOUND")
                            || e.message.contains("INVALID_FIELD")) => {}
                Err(e) => return Err(e),
            }
        }
        match self.find_key(entity, match_fields).await? {
            Some(id) => self.update(entity, &id, &record, None).await,
            None => {
                let mut record = record;
                for (k, v) in match_fields {
                    crate::runtime::write_field(&mut record, k, v.clone());
                }
                self.create(entity, &record).await
            }
        }
    }

    async fn find_key(
        &self,
        entity: &str,
        match_fields: &[(String, Value)],
    ) -> Result<Option<String>, ConnectorError> {
        let key = self.key_field(entity);
        let soql = self.soql(entity, match_fields, std::slice::from_ref(&key), Some(1))?;
        let rows = self.query(&soql, Some(1)).await?;
        Ok(rows.first().and_then(|r| r.get(&key)).and_then(text_of))
    }
}

/// One `describe` field as a field definition.
fn field_spec(f: &Value) -> Option<(String, Value)> {
    let name = f.get("name")?.as_str()?.to_string();
    let flag = |k: &str| f.get(k).and_then(Value::as_bool).unwrap_or(false);
    let field_type = match f.get("type").and_then(Value::as_str).unwrap_or_default() {
        "int" | "double" | "percent" | "long" => "number",
        "currency" => "money",
        "date" => "date",
        "datetime" => "datetime",
        "boolean" => "bool",
        "picklist" | "combobox" => "option",
        "multipicklist" => "multi_option",
        "reference" => "lookup",
        "address" | "location" | "base64" | "anyType" | "complexvalue" => return None,
        _ => "string",
    };
    let mut spec = Map::new();
    spec.insert("type".into(), Value::String(field_type.into()));
    if let Some(label) = f.get("label").and_then(Value::as_str) {
        spec.insert("label".into(), Value::String(label.into()));
    }
    if flag("createable") && !flag("nillable") && !flag("defaultedOnCreate") {
        spec.insert("required".into(), Value::Bool(true));
    }
    if !flag("createable") && !flag("updateable") {
        spec.insert("read_only".into(), Value::Bool(true));
    }
    if field_type == "string"
        && let Some(n) = f
            .get("length")
            .filter(|n| n.as_u64().is_some_and(|n| n > 0))
    {
        spec.insert("max_length".into(), n.clone());
    }
    let values: Vec<Value> = f
        .get("picklistValues")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("active").and_then(Value::as_bool).unwrap_or(true))
                .filter_map(|v| v.get("value").cloned())
                .collect()
        })
        .unwrap_or_default();
    if !values.is_empty() {
        spec.insert("values".into(), Value::Array(values));
    }
    if field_type == "lookup"
        && let Some(target) = f.pointer("/referenceTo/0").and_then(Value::as_str)
    {
        spec.insert("target".into(), Value::String(target.into()));
    }
    Some((name, Value::Object(spec)))
}
