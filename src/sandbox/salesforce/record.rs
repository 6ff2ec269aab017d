//! Salesforce record writes and the record's JSON form: field binding (case-insensitive
//! API names, types, lengths, restricted picklists, references), required fields,
//! values derived from the stage (`IsClosed`, `IsWon`, `Probability`, forecast), audit
//! fields (`SystemModstamp`, `LastModifiedDate`), and find-by-field for upserts.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::ids;
use super::schema::{self, Field, SObject, Type};
use crate::sandbox::error::{ApiError, Service};
use crate::sandbox::stamp;
use crate::sandbox::state::{Actor, Core, ns};

/// A stored record: field values by API name.
pub(crate) type Record = Map<String, Value>;

/// A 400 error in Salesforce's format.
pub(crate) fn bad(code: &str, message: impl Into<String>, fields: &[&str]) -> ApiError {
    ApiError::new(Service::Salesforce, StatusCode::BAD_REQUEST, code, message)
        .with_fields(fields.iter().map(|f| (*f).to_owned()).collect())
}

/// 404 for a missing record.
pub(crate) fn not_found() -> ApiError {
    ApiError::new(
        Service::Salesforce,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

fn parse_error(field: &Field, value: &Value, expected: &str) -> ApiError {
    bad(
        "JSON_PARSER_ERROR",
        format!(
            "Cannot deserialize instance of {expected} from {} value {value} or request may be missing a required field",
            match value {
                Value::String(_) => "VALUE_STRING",
                Value::Number(_) => "VALUE_NUMBER",
                Value::Bool(_) => "VALUE_TRUE",
                Value::Array(_) => "START_ARRAY",
                Value::Object(_) => "START_OBJECT",
                Value::Null => "VALUE_NULL",
            }
        ),
        &[field.name],
    )
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

/// The user ids a reference to `User` may name.
fn is_user(id: &str) -> bool {
    id.eq_ignore_ascii_case(ids::INTEGRATION_USER_ID)
        || id.eq_ignore_ascii_case(ids::SANDBOX_USER_ID)
}

/// Finds a record by id, tolerating 15-character and case-folded 18-character ids.
pub(crate) fn lookup<'a>(core: &'a Core, sobject: &str, id: &str) -> Option<(String, &'a Record)> {
    let id = ids::normalize(id)?;
    let table = core.salesforce.get(sobject)?;
    if let Some(record) = table.get(&id) {
        return Some((id, record));
    }
    table
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&id))
        .map(|(k, r)| (k.clone(), r))
}

fn coerce(core: &Core, field: &Field, value: &Value) -> Result<Value, ApiError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match field.kind {
        Type::String(max)
        | Type::TextArea(max)
        | Type::Url(max)
        | Type::Email(max)
        | Type::Phone(max) => {
            let text = text_of(value).ok_or_else(|| parse_error(field, value, "String"))?;
            if text.chars().count() > max {
                return Err(bad(
                    "STRING_TOO_LONG",
                    format!(
                        "{}: data value too large: {text} (max length={max})",
                        field.label
                    ),
                    &[field.name],
                ));
            }
            if matches!(field.kind, Type::Email(_)) && !(text.contains('@') && text.contains('.')) {
                return Err(bad(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {text}", field.label),
                    &[field.name],
                ));
            }
            Ok(json!(text))
        }
        Type::Picklist(values, restricted) => {
            let text = text_of(value).ok_or_else(|| parse_error(field, value, "String"))?;
            if restricted && !values.contains(&text.as_str()) && !core.seeding {
                return Err(bad(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!(
                        "{}: bad value for restricted picklist field: {text}",
                        field.label
                    ),
                    &[field.name],
                ));
            }
            Ok(json!(text))
        }
        Type::Boolean => match value {
            Value::Bool(b) => Ok(json!(b)),
            Value::String(s)
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                Ok(json!(s.eq_ignore_ascii_case("true")))
            }
            _ => Err(parse_error(field, value, "boolean")),
        },
        Type::Currency | Type::Percent => number_of(value)
            .map(|n| json!(n))
            .ok_or_else(|| parse_error(field, value, "double")),
        Type::Int => match number_of(value) {
            Some(n) if n.fract() == 0.0 && n.abs() < 2_147_483_648.0 => Ok(json!(n as i64)),
            _ => Err(parse_error(field, value, "int")),
        },
        Type::Date => value
            .as_str()
            .and_then(stamp::parse_date)
            .map(|d| json!(d.format("%Y-%m-%d").to_string()))
            .ok_or_else(|| parse_error(field, value, "date")),
        Type::DateTime => value
            .as_str()
            .and_then(stamp::parse)
            .map(|t| json!(stamp::salesforce(t)))
            .ok_or_else(|| parse_error(field, value, "datetime")),
        Type::Reference(targets, _) => {
            let text = value
                .as_str()
                .ok_or_else(|| parse_error(field, value, "ID"))?;
            let Some(id) = ids::normalize(text) else {
                return Err(bad(
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {text}", field.label),
                    &[field.name],
                ));
            };
            if targets.contains(&"User") {
                return if is_user(&id) || core.seeding {
                    Ok(json!(id))
                } else {
                    Err(bad(
                        "INVALID_CROSS_REFERENCE_KEY",
                        format!("{}: invalid cross reference id", field.label),
                        &[field.name],
                    ))
                };
            }
            let target = schema::by_prefix(&id).filter(|s| targets.contains(&s.name));
            let Some(target) = target else {
                return Err(bad(
                    "FIELD_INTEGRITY_EXCEPTION",
                    format!("{}: id value of incorrect type: {text}", field.label),
                    &[field.name],
                ));
            };
            match lookup(core, target.name, &id) {
                Some((id, _)) => Ok(json!(id)),
                None if core.seeding => Ok(json!(id)),
                None => Err(bad(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    &[field.name],
                )),
            }
        }
        Type::Id => Err(parse_error(field, value, "ID")),
    }
}

/// Binds a request body to field changes; `skip` names fields to leave out (upsert key).
pub(crate) fn bind(
    core: &Core,
    sobject: &SObject,
    body: &Value,
    creating: bool,
) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(input) = body else {
        return Err(bad(
            "JSON_PARSER_ERROR",
            format!(
                "Cannot deserialize instance of {} from {} token",
                sobject.name,
                if body.is_array() {
                    "START_ARRAY"
                } else {
                    "VALUE_STRING"
                }
            ),
            &[],
        ));
    };
    let mut changes = Map::new();
    let mut read_only = Vec::new();
    for (key, value) in input {
        if key == "attributes" {
            continue;
        }
        let Some(field) = sobject.field(key) else {
            return Err(bad(
                "INVALID_FIELD",
                format!("No such column '{key}' on sobject of type {}", sobject.name),
                &[],
            ));
        };
        if field.name == "Id" {
            if creating {
                return Err(bad(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    "Record ID: cannot specify Id in an insert call",
                    &["Id"],
                ));
            }
            continue;
        }
        if (creating && !field.createable) || (!creating && !field.updateable) {
            if !core.seeding {
                read_only.push(field.name);
            }
            continue;
        }
        changes.insert(field.name.to_owned(), coerce(core, field, value)?);
    }
    if !read_only.is_empty() {
        return Err(bad(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                read_only.join(", ")
            ),
            &read_only,
        ));
    }
    Ok(changes)
}

fn derive(sobject: &SObject, record: &mut Record, changes: &Map<String, Value>, creating: bool) {
    if sobject.name == "Opportunity" {
        let stage = record
            .get("StageName")
            .and_then(Value::as_str)
            .and_then(schema::stage);
        if let Some((_, closed, won, probability, forecast)) = stage {
            record.insert("IsClosed".into(), json!(closed));
            record.insert("IsWon".into(), json!(won));
            if creating || changes.contains_key("StageName") {
                if !changes.contains_key("Probability") {
                    record.insert("Probability".into(), json!(probability));
                }
                if !changes.contains_key("ForecastCategoryName") {
                    record.insert("ForecastCategoryName".into(), json!(forecast));
                }
            }
        }
    }
    if sobject.name == "Contact" {
        let part = |k: &str| {
            record
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let name = format!("{} {}", part("FirstName"), part("LastName"))
            .trim()
            .to_owned();
        record.insert("Name".into(), json!(name));
    }
}

fn check_required(sobject: &SObject, record: &Record) -> Result<(), ApiError> {
    let missing: Vec<&str> = sobject
        .fields
        .iter()
        .filter(|f| {
            f.required
                && record
                    .get(f.name)
                    .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
        })
        .map(|f| f.name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(bad(
        "REQUIRED_FIELD_MISSING",
        format!("Required fields are missing: [{}]", missing.join(", ")),
        &missing,
    ))
}

fn user(actor: Actor) -> &'static str {
    if actor == Actor::Api {
        ids::INTEGRATION_USER_ID
    } else {
        ids::SANDBOX_USER_ID
    }
}

fn touch(core: &mut Core, record: &mut Record, actor: Actor, creating: bool) {
    let now = json!(stamp::salesforce(core.stamps.next_salesforce()));
    if creating {
        record.insert("CreatedDate".into(), now.clone());
        record.insert("CreatedById".into(), json!(user(actor)));
    }
    record.insert("LastModifiedDate".into(), now.clone());
    record.insert("LastModifiedById".into(), json!(user(actor)));
    record.insert("SystemModstamp".into(), now);
}

fn store(core: &mut Core, sobject: &SObject, id: &str, record: Record) {
    core.persist(
        &ns::salesforce(sobject.name),
        id,
        &Value::Object(record.clone()),
    );
    core.salesforce
        .entry(sobject.name.to_owned())
        .or_default()
        .insert(id.to_owned(), record);
}

/// Creates a record from a body, with `extra` field values (an upsert's key) added.
pub(crate) fn create(
    core: &mut Core,
    sobject: &SObject,
    body: &Value,
    extra: Option<(&Field, Value)>,
    actor: Actor,
) -> Result<String, ApiError> {
    let mut changes = bind(core, sobject, body, true)?;
    if let Some((field, value)) = extra {
        changes.insert(field.name.to_owned(), coerce(core, field, &value)?);
    }
    let mut record = Record::new();
    for field in sobject.fields {
        let default = match (field.name, field.kind) {
            ("IsDeleted", _) | (_, Type::Boolean) => json!(false),
            ("CurrencyIsoCode", _) => json!("USD"),
            ("OwnerId", _) => json!(user(actor)),
            _ => Value::Null,
        };
        record.insert(field.name.to_owned(), default);
    }
    for (key, value) in &changes {
        record.insert(key.clone(), value.clone());
    }
    check_required(sobject, &record)?;
    derive(sobject, &mut record, &changes, true);
    core.counters.salesforce_record += 1;
    core.persist_counters();
    let id = ids::new_id(sobject.prefix, core.counters.salesforce_record);
    record.insert("Id".into(), json!(id));
    touch(core, &mut record, actor, true);
    store(core, sobject, &id, record);
    Ok(id)
}

/// Updates a record (every update moves `SystemModstamp`, changed values or not).
pub(crate) fn update(
    core: &mut Core,
    sobject: &SObject,
    id: &str,
    body: &Value,
    actor: Actor,
) -> Result<String, ApiError> {
    let (id, existing) = lookup(core, sobject.name, id).ok_or_else(not_found)?;
    let mut record = existing.clone();
    if let Some(body_id) = body
        .get("Id")
        .or_else(|| body.get("id"))
        .and_then(Value::as_str)
        && ids::normalize(body_id).is_none_or(|b| !b.eq_ignore_ascii_case(&id))
    {
        return Err(bad(
            "INVALID_ID_FIELD",
            "The Id in the body does not match the record being updated",
            &["Id"],
        ));
    }
    let changes = bind(core, sobject, body, false)?;
    for (key, value) in &changes {
        record.insert(key.clone(), value.clone());
    }
    check_required(sobject, &record)?;
    derive(sobject, &mut record, &changes, false);
    touch(core, &mut record, actor, false);
    store(core, sobject, &id, record);
    Ok(id)
}

/// Deletes a record.
pub(crate) fn delete(core: &mut Core, sobject: &SObject, id: &str) -> Result<(), ApiError> {
    let (id, _) = lookup(core, sobject.name, id).ok_or_else(not_found)?;
    if let Some(table) = core.salesforce.get_mut(sobject.name) {
        table.remove(&id);
    }
    core.unpersist(&ns::salesforce(sobject.name), &id);
    Ok(())
}

/// Ids of the records whose field equals the value (external ids compare case-insensitively).
pub(crate) fn find_by(core: &Core, sobject: &SObject, field: &Field, value: &str) -> Vec<String> {
    core.salesforce
        .get(sobject.name)
        .map(|table| {
            table
                .iter()
                .filter(|(_, r)| {
                    r.get(field.name)
                        .and_then(text_of)
                        .is_some_and(|v| v.eq_ignore_ascii_case(value))
                })
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The record URL path.
pub(crate) fn url(version: &str, sobject: &str, id: &str) -> String {
    format!("/services/data/{version}/sobjects/{sobject}/{id}")
}

/// The JSON form of a record: `attributes`, then the fields (all, or the chosen ones and `Id`).
pub(crate) fn render(
    sobject: &SObject,
    record: &Record,
    fields: Option<&[&'static Field]>,
    version: &str,
) -> Value {
    let id = record.get("Id").and_then(Value::as_str).unwrap_or("");
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({"type": sobject.name, "url": url(version, sobject.name, id)}),
    );
    match fields {
        None => {
            for field in sobject.fields {
                out.insert(
                    field.name.to_owned(),
                    record.get(field.name).cloned().unwrap_or(Value::Null),
                );
            }
        }
        Some(fields) => {
            for field in fields {
                out.insert(
                    field.name.to_owned(),
                    record.get(field.name).cloned().unwrap_or(Value::Null),
                );
            }
            out.insert("Id".into(), json!(id));
        }
    }
    Value::Object(out)
}
