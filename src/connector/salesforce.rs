//! The `salesforce` kind: sObject REST and SOQL on the token's `instance_url`
//! (checked against the allow-list before any token goes there). Records drop
//! `attributes`; the key is `Id`. Finds are SOQL with escaped literals, paged by
//! `nextRecordsUrl`; creates and updates re-read the record; updates with a
//! concurrency token compare it with the record's `SystemModstamp` (Salesforce has
//! no `If-Match` on most objects); upserts on one custom field use the
//! external-id upsert (201 created / 200 updated). The `call` operations are in
//! `salesforce_ops.rs`.

use reqwest::Method;
use serde_json::{Map, Value};
use url::Url;

use super::Connector;
use super::http::{Call, Connection, join, segment};
use super::operations::Operations;
use super::set::{BuildContext, ConnectorConfigError};
use super::support::{Entities, MAX_PAGES, invalid, object, safe_name, text_of};
use super::wire::Dialect;
use crate::runtime::connectors::{BoxFuture, ConnectorError, ErrorKind, Request};
use crate::spec::mapping::FieldType;
use crate::spec::project::LimitsSpec;

/// Most rows `FIELDS(ALL)` may return per query.
const FIELDS_ALL_LIMIT: u32 = 200;

/// A Salesforce connector.
pub(crate) struct Salesforce {
    pub(super) conn: Connection,
    version: String,
    pub(super) entities: Entities,
    extra: Operations,
}

/// Builds a `salesforce` connector (25 concurrent requests unless `limits` say
/// otherwise: Salesforce's limit on long-running requests).
pub(crate) fn build(cx: &BuildContext<'_>) -> Result<Box<dyn Connector>, ConnectorConfigError> {
    let name = &cx.connector.name;
    let limits = LimitsSpec {
        concurrent: Some(25),
        ..LimitsSpec::default()
    };
    let version = cx
        .connector
        .spec
        .api_version
        .clone()
        .unwrap_or_else(|| "v62.0".into());
    Ok(Box::new(Salesforce {
        conn: Connection::new(name, Dialect::Salesforce, cx.client, cx.connection, &limits),
        version: if version.starts_with('v') {
            version
        } else {
            format!("v{version}")
        },
        entities: Entities::new(&cx.connector.spec.entities),
        extra: Operations::compile(cx.env, name, &cx.connector.spec)?,
    }))
}

/// A record without Salesforce's `attributes` (at any depth).
pub(super) fn normalize(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| k != "attributes")
                .map(|(k, v)| (k, normalize(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

/// `'text'` with SOQL's escapes.
pub(super) fn soql_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The SOQL literal of `value` for a field of `field_type`.
fn soql_literal(value: &Value, field_type: Option<FieldType>) -> Option<String> {
    let text = value.as_str().map(str::trim);
    match (field_type, text, value) {
        (Some(FieldType::Number | FieldType::Money), Some(t), _)
            if t.parse::<f64>().is_ok_and(f64::is_finite) =>
        {
            Some(t.to_string())
        }
        (Some(FieldType::Bool), Some(t), _)
            if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") =>
        {
            Some(t.to_ascii_lowercase())
        }
        (Some(FieldType::Date), Some(t), _)
            if chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok() =>
        {
            Some(t.to_string())
        }
        (Some(FieldType::Datetime), Some(t), _)
            if chrono::DateTime::parse_from_rfc3339(t).is_ok() =>
        {
            Some(t.to_string())
        }
        (_, Some(t), _) => Some(soql_string(t)),
        (_, None, Value::Null) => Some("null".into()),
        (_, None, Value::Bool(b)) => Some(b.to_string()),
        (_, None, Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Two modification stamps name the same instant (`2024-01-02T03:04:05.000+0000`).
fn same_stamp(a: &str, b: &str) -> bool {
    let parse = |s: &str| {
        chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
            .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
            .ok()
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

impl Salesforce {
    /// `{instance}/services/data/{version}` + `path`.
    pub(super) async fn url(&self, path: &str) -> Result<Url, ConnectorError> {
        join(
            &self.conn.api_base().await?,
            &format!(
                "/services/data/{}/{}",
                self.version,
                path.trim_start_matches('/')
            ),
        )
    }

    /// The sObject of `entity` (its `path`, else the entity name).
    pub(super) fn sobject(&self, entity: &str) -> Result<String, ConnectorError> {
        let name = self.entities.path(entity, str::to_string);
        if safe_name(&name, &[]) {
            Ok(name)
        } else {
            Err(invalid(format!("`{name}` is not an sObject name")))
        }
    }

    pub(super) fn key_field(&self, entity: &str) -> String {
        self.entities.key(entity, |_| "Id".into())
    }

    /// A record as a write body: no `attributes`, no `Id`.
    pub(super) fn body(&self, record: &Value, without: &[&str]) -> Result<Value, ConnectorError> {
        Ok(Value::Object(
            object(record, "a Salesforce record")?
                .iter()
                .filter(|(k, _)| *k != "attributes" && *k != "Id" && !without.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<_, _>>(),
        ))
    }

    pub(super) fn soql(
        &self,
        entity: &str,
        where_fields: &[(String, Value)],
        select: &[String],
        limit: Option<u32>,
    ) -> Result<String, ConnectorError> {
        let sobject = self.sobject(entity)?;
        let declared = self.entities.field_names(entity);
        let mut fields: Vec<String> = if select.is_empty() {
            declared
        } else {
            select.to_vec()
        };
        let key = self.key_field(entity);
        let mut limit = limit;
        if fields.is_empty() {
            fields.push("FIELDS(ALL)".into());
            limit = Some(limit.map_or(FIELDS_ALL_LIMIT, |l| l.min(FIELDS_ALL_LIMIT)));
        } else if !fields.contains(&key) {
            fields.insert(0, key);
        }
        for f in &fields {
            if f != "FIELDS(ALL)" && !safe_name(f, &['.']) {
                return Err(invalid(format!("`{f}` is not a Salesforce field name")));
            }
        }
        let mut soql = format!("SELECT {} FROM {sobject}", fields.join(", "));
        let mut clauses = Vec::new();
        for (field, value) in where_fields {
            if !safe_name(field, &['.']) {
                return Err(invalid(format!("`{field}` is not a Salesforce field name")));
            }
            let literal = soql_literal(value, self.entities.field_type(entity, field))
                .ok_or_else(|| invalid(format!("`{field}`: only a single value can be matched")))?;
            clauses.push(format!("{field} = {literal}"));
        }
        if !clauses.is_empty() {
            soql.push_str(&format!(" WHERE {}", clauses.join(" AND ")));
        }
        if let Some(l) = limit {
            soql.push_str(&format!(" LIMIT {l}"));
        }
        Ok(soql)
    }

    /// Runs a SOQL query, following `nextRecordsUrl` until `limit` rows.
    pub(super) async fn query(
        &self,
        soql: &str,
        limit: Option<usize>,
    ) -> Result<Vec<Value>, ConnectorError> {
        let base = self.conn.api_base().await?;
        let mut url = self.url("query").await?;
        url.query_pairs_mut().append_pair("q", soql);
        let mut rows = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self.conn.send(Call::new(Method::GET, url.clone())).await?;
            if let Some(items) = reply.body.get("records").and_then(Value::as_array) {
                rows.extend(items.iter().cloned().map(normalize));
            }
            let done = reply
                .body
                .get("done")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let next = reply.body.get("nextRecordsUrl").and_then(Value::as_str);
            match next {
                Some(link) if !done && limit.is_none_or(|l| rows.len() < l) => {
                    let next = if link.starts_with("/services/") {
                        join(&base, link)?
                    } else {
                        self.conn.resolve_url(&base, link)?
                    };
                    if next == url {
                        // A link to the same page would never end.
                        break;
                    }
                    url = next;
                }
                _ => break,
            }
        }
        if let Some(l) = limit {
            rows.truncate(l);
        }
        Ok(rows)
    }

    pub(super) async fn get(
        &self,
        entity: &str,
        key: &str,
        select: &[String],
    ) -> Result<Value, ConnectorError> {
        if key.is_empty() {
            return Err(super::support::not_found(entity, key));
        }
        let mut url = self
            .url(&format!(
                "sobjects/{}/{}",
                self.sobject(entity)?,
                segment(key)
            ))
            .await?;
        if !select.is_empty() {
            url.query_pairs_mut()
                .append_pair("fields", &select.join(","));
        }
        Ok(normalize(
            self.conn.send(Call::new(Method::GET, url)).await?.body,
        ))
    }

    pub(super) async fn create(
        &self,
        entity: &str,
        record: &Value,
    ) -> Result<Value, ConnectorError> {
        let url = self
            .url(&format!("sobjects/{}", self.sobject(entity)?))
            .await?;
        let reply = self
            .conn
            .send(Call::new(Method::POST, url).json(self.body(record, &[])?))
            .await?;
        let id = reply
            .body
            .get("id")
            .and_then(text_of)
            .ok_or_else(|| invalid("the create answer has no id"))?;
        self.get(entity, &id, &[]).await
    }

    pub(super) async fn update(
        &self,
        entity: &str,
        key: &str,
        changes: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        if let Some(expected) = if_match.filter(|t| !t.is_empty() && *t != "*") {
            let stamp = self
                .entities
                .modified_field(entity)
                .unwrap_or_else(|| "SystemModstamp".into());
            let current = self.get(entity, key, std::slice::from_ref(&stamp)).await?;
            if let Some(actual) = current.get(&stamp).and_then(Value::as_str)
                && !same_stamp(actual, expected)
            {
                return Err(ConnectorError {
                    kind: ErrorKind::Conflict,
                    message: format!(
                        "{entity} `{key}` changed since it was read ({stamp} is {actual}, expected {expected})"
                    ),
                    status: Some(412),
                    stale: false,
                });
            }
        }
        let url = self
            .url(&format!(
                "sobjects/{}/{}",
                self.sobject(entity)?,
                segment(key)
            ))
            .await?;
        self.conn
            .send(Call::new(Method::PATCH, url).json(self.body(changes, &[])?))
            .await?;
        self.get(entity, key, &[]).await
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
            } => {
                let soql = self.soql(&entity, &where_fields, &select, limit)?;
                Ok(Value::Array(
                    self.query(&soql, limit.map(|l| l as usize)).await?,
                ))
            }
            Request::Create { entity, record, .. } => self.create(&entity, &record).await,
            Request::Update {
                entity,
                key,
                changes,
                if_match,
                ..
            } => {
                self.update(&entity, &key, &changes, if_match.as_deref())
                    .await
            }
            Request::Upsert {
                entity,
                match_fields,
                record,
                ..
            } => self.upsert(&entity, &match_fields, record).await,
            Request::Call {
                operation, inputs, ..
            } => match operation.as_str() {
                op if self.extra.has(op) => {
                    Ok(self.extra.run(&self.conn, op, &inputs, None).await?.0)
                }
                op => self.call(op, &inputs).await,
            },
        }
    }
}

impl Connector for Salesforce {
    fn execute<'a>(&'a self, request: Request) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        Box::pin(self.handle(request))
    }

    fn pull_metadata<'a>(
        &'a self,
        entities: &'a [String],
    ) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        Box::pin(self.metadata(entities))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn soql_literals_are_escaped() {
        assert_eq!(
            soql_string("O'Brien \\ \"x\"\n"),
            "'O\\'Brien \\\\ \\\"x\\\"\\n'"
        );
        assert_eq!(soql_literal(&json!(5), None).as_deref(), Some("5"));
        assert_eq!(
            soql_literal(&json!("5"), Some(FieldType::Money)).as_deref(),
            Some("5")
        );
        assert_eq!(
            soql_literal(&json!("2024-01-31"), Some(FieldType::Date)).as_deref(),
            Some("2024-01-31")
        );
        assert_eq!(
            soql_literal(&json!("x' OR Name != '"), Some(FieldType::Number)).as_deref(),
            Some("'x\\' OR Name != \\''")
        );
        assert_eq!(soql_literal(&json!([1]), None), None);
        assert!(same_stamp(
            "2024-01-02T03:04:05.000+0000",
            "2024-01-02T03:04:05Z"
        ));
        assert!(!same_stamp(
            "2024-01-02T03:04:05.000+0000",
            "2024-01-02T03:04:06.000+0000"
        ));
    }
}
