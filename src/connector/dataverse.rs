//! The `dataverse` kind: the Dynamics 365 / Dataverse Web API (OData v4). Records
//! are canonicalised for the interpreter: OData annotations dropped except
//! `@odata.etag`, lookup columns `_x_value` read as `x`; on writes a field declared
//! `type: lookup` becomes `x@odata.bind: /<target set>(<id>)` (polymorphic
//! customer/owner lookups bind `x_<target>@odata.bind`). Queries page with
//! `Prefer: odata.maxpagesize` and `@odata.nextLink`; creates and updates ask for
//! `return=representation`; updates send `If-Match` (the weak eTag, or `*` so that
//! an update never creates). The `call` operations are in `dataverse_ops.rs`.

use reqwest::Method;
use serde_json::{Map, Value};
use url::Url;

use super::Connector;
use super::http::{Call, Connection, Reply, join};
use super::odata;
use super::operations::Operations;
use super::set::{BuildContext, ConnectorConfigError};
use super::support::{Entities, MAX_PAGES, invalid, not_found, object, safe_name, text_of};
use super::wire::Dialect;
use crate::runtime::connectors::{BoxFuture, ConnectorError, Request};
use crate::spec::mapping::FieldType;
use crate::spec::project::LimitsSpec;

/// Lookups that can point at several tables: written as `<field>_<target>@odata.bind`.
const POLYMORPHIC: &[&str] = &[
    "customerid",
    "parentcustomerid",
    "ownerid",
    "regardingobjectid",
];
/// Dataverse's largest page.
const MAX_PAGE_SIZE: u32 = 5000;

/// A Dataverse connector.
pub(crate) struct Dataverse {
    pub(super) conn: Connection,
    version: String,
    pub(super) entities: Entities,
    extra: Operations,
}

/// Builds a `dataverse` connector. Without `limits`, the service protection limits
/// apply: 6000 requests per 5 minutes, 52 concurrent.
pub(crate) fn build(cx: &BuildContext<'_>) -> Result<Box<dyn Connector>, ConnectorConfigError> {
    let name = &cx.connector.name;
    let limits = LimitsSpec {
        requests: Some(6000),
        window: Some(crate::spec::common::Duration("5m".into())),
        concurrent: Some(52),
    };
    Ok(Box::new(Dataverse {
        conn: Connection::new(name, Dialect::Dataverse, cx.client, cx.connection, &limits),
        version: cx
            .connector
            .spec
            .api_version
            .clone()
            .unwrap_or_else(|| "v9.2".into()),
        entities: Entities::new(&cx.connector.spec.entities),
        extra: Operations::compile(cx.env, name, &cx.connector.spec)?,
    }))
}

/// A Web API record as the interpreter sees it (see the module doc).
pub(super) fn normalize(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter_map(|(k, v)| {
                    if k == "@odata.etag" {
                        return Some((k, v));
                    }
                    if k.contains('@') {
                        return None;
                    }
                    let name = match k.strip_prefix('_').and_then(|r| r.strip_suffix("_value")) {
                        Some(inner) if !inner.is_empty() => inner.to_string(),
                        _ => k,
                    };
                    Some((name, normalize(v)))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

/// The id in an `OData-EntityId` header (`.../opportunities(<id>)`).
pub(super) fn entity_id(header: &str) -> Option<String> {
    let open = header.rfind('(')?;
    let close = header[open..].find(')')? + open;
    Some(header[open + 1..close].to_string())
}

impl Dataverse {
    /// `{base}/api/data/{version}` + `path`.
    pub(super) fn url(&self, path: &str) -> Result<Url, ConnectorError> {
        join(
            &self.conn.base()?,
            &format!(
                "/api/data/{}/{}",
                self.version,
                path.trim_start_matches('/')
            ),
        )
    }

    /// The entity set of `entity` (its `path`, else `<entity>s`).
    pub(super) fn entity_set(&self, entity: &str) -> String {
        self.entities.path(entity, |e| format!("{e}s"))
    }

    pub(super) fn key_field(&self, entity: &str) -> String {
        self.entities.key(entity, |e| format!("{e}id"))
    }

    /// `Some(target)` when `field` is a declared lookup.
    fn lookup(&self, entity: &str, field: &str) -> Option<Option<String>> {
        self.entities
            .field(entity, field)
            .filter(|f| f.field_type == FieldType::Lookup)
            .map(|f| f.target.clone())
    }

    fn column(&self, entity: &str, field: &str) -> String {
        match self.lookup(entity, field) {
            Some(_) => format!("_{field}_value"),
            None => field.to_string(),
        }
    }

    fn select(&self, entity: &str, select: &[String]) -> Result<Option<String>, ConnectorError> {
        if select.is_empty() {
            return Ok(None);
        }
        let mut cols = Vec::new();
        for f in select {
            if !safe_name(f, &[]) {
                return Err(invalid(format!("`{f}` is not a Dataverse column name")));
            }
            cols.push(self.column(entity, f));
        }
        Ok(Some(cols.join(",")))
    }

    /// `record` as the Web API takes it: lookups as `@odata.bind`.
    fn to_wire(&self, entity: &str, record: &Value) -> Result<Value, ConnectorError> {
        let mut out = Map::new();
        for (k, v) in object(record, "a Dataverse record")? {
            if k == "@odata.etag" || k.starts_with("@odata.") {
                continue;
            }
            let field = k
                .strip_prefix('_')
                .and_then(|r| r.strip_suffix("_value"))
                .unwrap_or(k);
            let Some(target) = self.lookup(entity, field) else {
                out.insert(k.clone(), v.clone());
                continue;
            };
            let target = target
                .ok_or_else(|| invalid(format!("lookup `{field}` declares no `target` entity")))?;
            let (target_name, set) = match self.entities.by_name_or_path(&target) {
                Some((name, spec)) => (
                    name.clone(),
                    spec.path.clone().unwrap_or_else(|| format!("{name}s")),
                ),
                None => (target.clone(), format!("{target}s")),
            };
            let nav = if POLYMORPHIC.contains(&field) {
                format!("{field}_{target_name}@odata.bind")
            } else {
                format!("{field}@odata.bind")
            };
            let bound = match v {
                Value::Null => Value::Null,
                Value::String(s) if s.starts_with('/') => Value::String(s.clone()),
                other => {
                    let id = odata::guid(other).ok_or_else(|| {
                        invalid(format!(
                            "lookup `{field}`: `{}` is not a record id (GUID)",
                            text_of(other).unwrap_or_default()
                        ))
                    })?;
                    Value::String(format!("/{set}({id})"))
                }
            };
            out.insert(nav, bound);
        }
        Ok(Value::Object(out))
    }

    /// `field eq literal`, or `None` when the value can match no row (a
    /// malformed id).
    pub(super) fn clause(
        &self,
        entity: &str,
        field: &str,
        value: &Value,
    ) -> Result<Option<String>, ConnectorError> {
        if !safe_name(field, &[]) {
            return Err(invalid(format!("`{field}` is not a Dataverse column name")));
        }
        let is_id = self.lookup(entity, field).is_some() || field == self.key_field(entity);
        let literal = if is_id && !value.is_null() {
            match odata::guid(value) {
                Some(g) => g,
                None => return Ok(None),
            }
        } else {
            odata::typed_literal(value, self.entities.field_type(entity, field))
                .ok_or_else(|| invalid(format!("`{field}`: only a single value can be matched")))?
        };
        Ok(Some(format!("{} eq {literal}", self.column(entity, field))))
    }

    fn record_url(&self, entity: &str, key: &str) -> Result<Option<Url>, ConnectorError> {
        match odata::guid(&Value::String(key.to_string())) {
            Some(id) => Ok(Some(
                self.url(&format!("{}({id})", self.entity_set(entity)))?,
            )),
            None => Ok(None),
        }
    }

    async fn get(
        &self,
        entity: &str,
        key: &str,
        select: &[String],
    ) -> Result<Value, ConnectorError> {
        let mut url = self
            .record_url(entity, key)?
            .ok_or_else(|| not_found(entity, key))?;
        if let Some(s) = self.select(entity, select)? {
            url.query_pairs_mut().append_pair("$select", &s);
        }
        Ok(normalize(
            self.conn.send(Call::new(Method::GET, url)).await?.body,
        ))
    }

    /// Follows `@odata.nextLink` from `url` until `limit` rows (or the end).
    pub(super) async fn pages(
        &self,
        url: Url,
        limit: Option<u32>,
        prefer: &str,
    ) -> Result<(Vec<Value>, Reply), ConnectorError> {
        let base = self.conn.base()?;
        let mut rows = Vec::new();
        let mut next = url;
        for _ in 0..MAX_PAGES {
            let reply = self
                .conn
                .send(Call::new(Method::GET, next.clone()).header("Prefer", prefer))
                .await?;
            if let Some(items) = reply.body.get("value").and_then(Value::as_array) {
                rows.extend(items.iter().cloned());
            }
            let link = reply
                .body
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(str::to_string);
            match link {
                Some(l) if limit.is_none_or(|n| rows.len() < n as usize) => {
                    let url = self.conn.resolve_url(&base, &l)?;
                    if url == next {
                        // A link to the same page would never end.
                        return Ok((rows, reply));
                    }
                    next = url;
                }
                _ => return Ok((rows, reply)),
            }
        }
        Err(invalid("too many pages"))
    }

    async fn find(
        &self,
        entity: &str,
        where_fields: &[(String, Value)],
        select: &[String],
        limit: Option<u32>,
    ) -> Result<Value, ConnectorError> {
        let mut clauses = Vec::new();
        for (field, value) in where_fields {
            match self.clause(entity, field, value)? {
                Some(c) => clauses.push(c),
                None => return Ok(Value::Array(Vec::new())),
            }
        }
        let mut url = self.url(&self.entity_set(entity))?;
        {
            let mut q = url.query_pairs_mut();
            if !clauses.is_empty() {
                q.append_pair("$filter", &clauses.join(" and "));
            }
            if let Some(s) = self.select(entity, select)? {
                q.append_pair("$select", &s);
            }
        }
        let size = limit.map_or(MAX_PAGE_SIZE, |l| l.clamp(1, MAX_PAGE_SIZE));
        let (mut rows, _) = self
            .pages(url, limit, &format!("odata.maxpagesize={size}"))
            .await?;
        if let Some(l) = limit {
            rows.truncate(l as usize);
        }
        Ok(normalize(Value::Array(rows)))
    }

    /// The record an answer describes: its body, or a read of the record the
    /// `OData-EntityId` header names (or `key`).
    async fn written(
        &self,
        entity: &str,
        reply: Reply,
        key: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        if reply.body.is_object() {
            return Ok(normalize(reply.body));
        }
        let id = reply
            .header("OData-EntityId")
            .and_then(entity_id)
            .or_else(|| key.map(str::to_string));
        match id {
            Some(id) => self.get(entity, &id, &[]).await,
            None => Err(invalid("the answer names no record")),
        }
    }

    async fn create(&self, entity: &str, record: &Value) -> Result<Value, ConnectorError> {
        let body = self.to_wire(entity, record)?;
        let call = Call::new(Method::POST, self.url(&self.entity_set(entity))?)
            .header("Prefer", "return=representation")
            .json(body);
        let reply = self.conn.send(call).await?;
        self.written(entity, reply, None).await
    }

    async fn update(
        &self,
        entity: &str,
        key: &str,
        changes: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        let url = self
            .record_url(entity, key)?
            .ok_or_else(|| not_found(entity, key))?;
        let call = Call::new(Method::PATCH, url)
            .header("Prefer", "return=representation")
            .header(
                "If-Match",
                if_match.filter(|t| !t.is_empty()).unwrap_or("*"),
            )
            .json(self.to_wire(entity, changes)?);
        let reply = self.conn.send(call).await?;
        self.written(entity, reply, Some(key)).await
    }

    async fn upsert(
        &self,
        entity: &str,
        match_fields: &[(String, Value)],
        record: Value,
    ) -> Result<Value, ConnectorError> {
        let key_field = self.key_field(entity);
        if let [(field, value)] = match_fields
            && *field == key_field
            && let Some(id) = odata::guid(value)
        {
            // The Web API's own upsert: PATCH creates the row when the id is new.
            let url = self.url(&format!("{}({id})", self.entity_set(entity)))?;
            let call = Call::new(Method::PATCH, url)
                .header("Prefer", "return=representation")
                .json(self.to_wire(entity, &record)?);
            let reply = self.conn.send(call).await?;
            return self.written(entity, reply, Some(&id)).await;
        }
        let found = self.find(entity, match_fields, &[], Some(1)).await?;
        match found
            .as_array()
            .and_then(|a| a.first())
            .and_then(|r| r.get(&key_field))
            .and_then(text_of)
        {
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

impl Connector for Dataverse {
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
    fn records_are_canonical() {
        let wire = json!({
            "@odata.context": "x", "@odata.etag": "W/\"1\"", "name": "A",
            "_customerid_value": "g1", "_customerid_value@OData.Community.Display.V1.FormattedValue": "Contoso",
            "estimatedvalue@OData.Community.Display.V1.FormattedValue": "$1.00", "estimatedvalue": 1.0
        });
        assert_eq!(
            normalize(wire),
            json!({"@odata.etag": "W/\"1\"", "name": "A", "customerid": "g1", "estimatedvalue": 1.0})
        );
        assert_eq!(
            entity_id(
                "https://org/api/data/v9.2/opportunities(6f9619ff-8b86-d011-b42d-00c04fc964ff)"
            )
            .as_deref(),
            Some("6f9619ff-8b86-d011-b42d-00c04fc964ff")
        );
    }
}
