//! Dataverse's `call` operations and metadata: `win_opportunity` /
//! `lose_opportunity` (the WinOpportunity / LoseOpportunity actions), `changes`
//! (change tracking: `Prefer: odata.track-changes`, then the delta link) and
//! `entity_metadata` / `pull_metadata` (`EntityDefinitions` with attributes and
//! option sets, as a connector definition's `entities:` section).

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::dataverse::{Dataverse, normalize};
use super::http::Call;
use super::odata;
use super::support::{input_text, invalid, required_text, text_of};
use crate::runtime::connectors::ConnectorError;

/// Option-set attribute types whose values the metadata lists.
const OPTION_CASTS: &[&str] = &[
    "PicklistAttributeMetadata",
    "StateAttributeMetadata",
    "StatusAttributeMetadata",
    "MultiSelectPicklistAttributeMetadata",
];

fn number(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::Number(n) => Some(Value::Number(n.clone())),
        Value::String(s) => s.trim().parse::<i64>().ok().map(Value::from),
        _ => None,
    }
}

impl Dataverse {
    /// Runs a built-in `call` operation.
    pub(super) async fn call(
        &self,
        operation: &str,
        inputs: &Value,
    ) -> Result<Value, ConnectorError> {
        match operation {
            "win_opportunity" => self.close("WinOpportunity", 3, inputs).await,
            "lose_opportunity" => self.close("LoseOpportunity", 4, inputs).await,
            "changes" => self.changes(inputs).await,
            "modified_since" => self.modified_since(inputs).await,
            "entity_metadata" => {
                let entity = required_text(
                    inputs,
                    &["entity", "logical_name", "LogicalName"],
                    operation,
                )?;
                let snapshot = self.metadata(std::slice::from_ref(&entity)).await?;
                Ok(snapshot.get(&entity).cloned().unwrap_or(Value::Null))
            }
            other => Err(invalid(format!("Dataverse has no operation `{other}`"))),
        }
    }

    /// WinOpportunity / LoseOpportunity: inputs are the action's body
    /// (`{Status, OpportunityClose: {...}}`) or `{opportunityid, status, subject,
    /// description}`.
    async fn close(
        &self,
        action: &str,
        default_status: i64,
        inputs: &Value,
    ) -> Result<Value, ConnectorError> {
        let body = if let Some(close) = inputs.get("OpportunityClose") {
            if !close.is_object() {
                return Err(invalid("OpportunityClose must be a mapping"));
            }
            let status = number(inputs.get("Status")).unwrap_or(Value::from(default_status));
            json!({"Status": status, "OpportunityClose": close})
        } else {
            let id = required_text(inputs, &["opportunityid", "id", "key"], action)?;
            let guid = odata::guid(&Value::String(id.clone())).ok_or_else(|| {
                invalid(format!("{action}: `{id}` is not an opportunity id (GUID)"))
            })?;
            let status = number(inputs.get("status").or_else(|| inputs.get("Status")))
                .unwrap_or(Value::from(default_status));
            let mut close = Map::new();
            close.insert(
                "subject".into(),
                Value::String(
                    input_text(inputs, &["subject"]).unwrap_or_else(|| action.to_string()),
                ),
            );
            if let Some(d) = input_text(inputs, &["description"]) {
                close.insert("description".into(), Value::String(d));
            }
            close.insert(
                "opportunityid@odata.bind".into(),
                Value::String(format!("/{}({guid})", self.entity_set("opportunity"))),
            );
            json!({"Status": status, "OpportunityClose": close})
        };
        let reply = self
            .conn
            .send(Call::new(Method::POST, self.url(action)?).json(body))
            .await?;
        Ok(if reply.body.is_object() {
            reply.body
        } else {
            json!({})
        })
    }

    /// Change tracking: the first call (inputs `entity`, optional `select`) reads
    /// every row with `Prefer: odata.track-changes`; later calls pass the returned
    /// `delta_link`. Answers `{records, deleted, delta_link}`.
    async fn changes(&self, inputs: &Value) -> Result<Value, ConnectorError> {
        let url = match input_text(inputs, &["delta_link", "deltaLink"]) {
            Some(link) => self.conn.resolve_url(&self.conn.base()?, &link)?,
            None => {
                let entity = required_text(inputs, &["entity"], "changes")?;
                let mut url = self.url(&self.entity_set(&entity))?;
                let select = match inputs.get("select") {
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(text_of)
                        .collect::<Vec<_>>()
                        .join(","),
                    Some(other) => text_of(other).unwrap_or_default(),
                    None => String::new(),
                };
                if !select.is_empty() {
                    url.query_pairs_mut().append_pair("$select", &select);
                }
                url
            }
        };
        let (rows, last) = self
            .pages(url, None, "odata.track-changes,odata.maxpagesize=5000")
            .await?;
        let mut records = Vec::new();
        let mut deleted = Vec::new();
        for row in rows {
            let tombstone = row
                .get("@odata.context")
                .and_then(Value::as_str)
                .is_some_and(|c| c.contains("$deletedEntity"))
                || row.get("reason").and_then(Value::as_str) == Some("deleted");
            if tombstone {
                deleted.push(row.get("id").cloned().unwrap_or(Value::Null));
            } else {
                records.push(normalize(row));
            }
        }
        let delta = last
            .body
            .get("@odata.deltaLink")
            .cloned()
            .unwrap_or(Value::Null);
        Ok(json!({"records": records, "deleted": deleted, "delta_link": delta}))
    }

    /// Polling by watermark: rows of `entity` modified at or after `since`
    /// (all rows without it) that match `where`, oldest first with the key as
    /// tie-breaker, as `{records: [{id, modified_at, version}], watermark}`.
    /// `version` is the row's eTag, which changes on every write even within one
    /// second of `modifiedon`.
    async fn modified_since(&self, inputs: &Value) -> Result<Value, ConnectorError> {
        let entity = required_text(inputs, &["entity"], "modified_since")?;
        let modified = self
            .entities
            .modified_field(&entity)
            .unwrap_or_else(|| "modifiedon".to_string());
        let created = self
            .entities
            .created_field(&entity)
            .unwrap_or_else(|| "createdon".to_string());
        let key = self.key_field(&entity);
        let mut clauses = Vec::new();
        if let Some(since) = input_text(inputs, &["since"]) {
            let at = chrono::DateTime::parse_from_rfc3339(&since)
                .map_err(|e| invalid(format!("`since` is not an RFC 3339 time: {e}")))?
                .with_timezone(&chrono::Utc);
            clauses.push(format!(
                "{modified} ge {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        for (field, value) in super::support::pairs(inputs.get("where")) {
            match self.clause(&entity, &field, &value)? {
                Some(c) => clauses.push(c),
                None => return Ok(json!({"records": [], "watermark": Value::Null})),
            }
        }
        let mut url = self.url(&self.entity_set(&entity))?;
        {
            let mut q = url.query_pairs_mut();
            if !clauses.is_empty() {
                q.append_pair("$filter", &clauses.join(" and "));
            }
            let mut select = vec![key.as_str(), modified.as_str()];
            if !select.contains(&created.as_str()) {
                select.push(&created);
            }
            q.append_pair("$select", &select.join(","));
            q.append_pair("$orderby", &format!("{modified} asc,{key} asc"));
        }
        let limit = input_text(inputs, &["limit"]).and_then(|l| l.parse::<u32>().ok());
        let (rows, _) = self.pages(url, limit, "odata.maxpagesize=5000").await?;
        let mut records = Vec::new();
        let mut watermark = Value::Null;
        for row in rows.into_iter().map(normalize) {
            let at = row.get(&modified).cloned().unwrap_or(Value::Null);
            let version = row
                .get("@odata.etag")
                .cloned()
                .filter(|v| !v.is_null())
                .unwrap_or_else(|| at.clone());
            if !at.is_null() {
                watermark = at.clone();
            }
            let created_at = row.get(&created).cloned().unwrap_or(Value::Null);
            records.push(json!({"id": row.get(&key).cloned().unwrap_or(Value::Null), "modified_at": at, "created_at": created_at, "version": version}));
        }
        Ok(json!({"records": records, "watermark": watermark}))
    }

    async fn options(&self, logical: &str) -> Result<Map<String, Value>, ConnectorError> {
        let mut out = Map::new();
        for cast in OPTION_CASTS {
            let mut url = self.url(&format!(
                "EntityDefinitions(LogicalName={})/Attributes/Microsoft.Dynamics.CRM.{cast}",
                odata::string_literal(logical)
            ))?;
            url.query_pairs_mut()
                .append_pair("$select", "LogicalName")
                .append_pair("$expand", "OptionSet($select=Options)");
            let reply = self.conn.send(Call::new(Method::GET, url)).await?;
            for attr in reply
                .body
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(name) = attr.get("LogicalName").and_then(Value::as_str) else {
                    continue;
                };
                let values: Vec<Value> = attr
                    .pointer("/OptionSet/Options")
                    .and_then(Value::as_array)
                    .map(|o| o.iter().filter_map(|o| o.get("Value").cloned()).collect())
                    .unwrap_or_default();
                out.insert(name.to_string(), Value::Array(values));
            }
        }
        Ok(out)
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
            let mut url = self.url(&format!(
                "EntityDefinitions(LogicalName={})",
                odata::string_literal(&name)
            ))?;
            url.query_pairs_mut()
                .append_pair("$select", "LogicalName,EntitySetName,PrimaryIdAttribute")
                .append_pair("$expand", "Attributes");
            let definition = self.conn.send(Call::new(Method::GET, url)).await?.body;
            let options = self.options(&name).await?;
            let mut fields = Map::new();
            for attr in definition
                .get("Attributes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some((field, spec)) = field_spec(attr, &options) {
                    fields.insert(field, spec);
                }
            }
            let mut entity = Map::new();
            for (key, source) in [("path", "EntitySetName"), ("key", "PrimaryIdAttribute")] {
                if let Some(v) = definition.get(source).filter(|v| v.is_string()) {
                    entity.insert(key.into(), v.clone());
                }
            }
            entity.insert("fields".into(), Value::Object(fields));
            snapshot.insert(name, Value::Object(entity));
        }
        Ok(Value::Object(snapshot))
    }
}

/// One attribute as a field definition, or `None` for attributes a mapping cannot
/// use (derived name columns, party lists, ...).
fn field_spec(attr: &Value, options: &Map<String, Value>) -> Option<(String, Value)> {
    let name = attr.get("LogicalName")?.as_str()?.to_string();
    if attr.get("AttributeOf").is_some_and(|v| !v.is_null()) {
        return None;
    }
    let kind = attr
        .get("AttributeType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let type_name = attr
        .pointer("/AttributeTypeName/Value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let date_only = attr.get("Format").and_then(Value::as_str) == Some("DateOnly")
        || attr
            .pointer("/DateTimeBehavior/Value")
            .and_then(Value::as_str)
            == Some("DateOnly");
    let field_type = match kind {
        "String" | "Memo" | "Uniqueidentifier" => "string",
        "Integer" | "BigInt" | "Decimal" | "Double" => "number",
        "Money" => "money",
        "DateTime" if date_only => "date",
        "DateTime" => "datetime",
        "Boolean" => "bool",
        "Picklist" | "State" | "Status" => "option",
        "Lookup" | "Customer" | "Owner" => "lookup",
        "Virtual" if type_name == "MultiSelectPicklistType" => "multi_option",
        _ => return None,
    };
    let mut spec = Map::new();
    spec.insert("type".into(), Value::String(field_type.into()));
    if let Some(label) = attr
        .pointer("/DisplayName/UserLocalizedLabel/Label")
        .and_then(Value::as_str)
    {
        spec.insert("label".into(), Value::String(label.into()));
    }
    if matches!(
        attr.pointer("/RequiredLevel/Value").and_then(Value::as_str),
        Some("ApplicationRequired" | "SystemRequired")
    ) {
        spec.insert("required".into(), Value::Bool(true));
    }
    let writable = |k: &str| attr.get(k).and_then(Value::as_bool).unwrap_or(true);
    if !writable("IsValidForCreate") && !writable("IsValidForUpdate") {
        spec.insert("read_only".into(), Value::Bool(true));
    }
    if let Some(n) = attr.get("MaxLength").filter(|n| n.is_u64()) {
        spec.insert("max_length".into(), n.clone());
    }
    if let Some(values) = options.get(&name) {
        spec.insert("values".into(), values.clone());
    }
    if field_type == "lookup"
        && let Some(target) = attr.pointer("/Targets/0").and_then(Value::as_str)
    {
        spec.insert("target".into(), Value::String(target.into()));
    }
    Some((name, Value::Object(spec)))
}
