//! Dataverse writes: binding a request body to attributes (types, lengths, option sets,
//! `@odata.bind` lookups), the state/status rules (a closed opportunity is read-only;
//! closing takes Win/LoseOpportunity), create, update, upsert with conditions, delete.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::read;
use super::schema::{self, Attribute, Entity, Kind, Level};
use super::{
    API_USER_ID, Request, Row, SANDBOX_USER_ID, Tombstone, bad_request, body_error, error,
    parse_guid, row_not_found,
};
use crate::sandbox::body::{self, Prefer};
use crate::sandbox::error::ApiError;
use crate::sandbox::stamp;
use crate::sandbox::state::{Actor, Core, Sandbox, ns};

fn type_error(value: &Value, edm: &str) -> ApiError {
    bad_request(format!(
        "Cannot convert the literal '{value}' to the expected type '{edm}'."
    ))
}

/// Converts a JSON value for an attribute; `lenient` (seeding) accepts option values
/// the default option sets lack, as a customized org would have.
fn coerce(
    entity: &Entity,
    attribute: &Attribute,
    value: &Value,
    lenient: bool,
) -> Result<Value, ApiError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let too_long = |max: usize| {
        error(
            StatusCode::BAD_REQUEST,
            "0x80044331",
            format!(
                "A validation error occurred. The length of the '{}' attribute of the '{}' entity exceeded the maximum allowed length of '{max}'.",
                attribute.name, entity.logical
            ),
        )
    };
    let options = |values: Vec<i64>| -> Result<Value, ApiError> {
        let n = value
            .as_i64()
            .ok_or_else(|| type_error(value, "Edm.Int32"))?;
        if values.contains(&n) || lenient {
            return Ok(json!(n));
        }
        let accepted: Vec<String> = values.iter().map(i64::to_string).collect();
        Err(error(
            StatusCode::BAD_REQUEST,
            "0x8004431a",
            format!(
                "A validation error occurred. The value {n} of '{}' on record of type '{}' is outside the valid range. Accepted Values: {}",
                attribute.name,
                entity.logical,
                accepted.join(",")
            ),
        ))
    };
    match attribute.kind {
        Kind::Text(max) | Kind::Memo(max) => {
            let text = value
                .as_str()
                .ok_or_else(|| type_error(value, "Edm.String"))?;
            if text.chars().count() > max {
                return Err(too_long(max));
            }
            Ok(value.clone())
        }
        Kind::Money | Kind::Decimal => match value.as_f64() {
            Some(n) if n.is_finite() && value.is_number() => Ok(value.clone()),
            _ => Err(type_error(value, "Edm.Decimal")),
        },
        Kind::Integer => value
            .as_i64()
            .map(|n| json!(n))
            .ok_or_else(|| type_error(value, "Edm.Int32")),
        Kind::Boolean => value
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| type_error(value, "Edm.Boolean")),
        Kind::DateOnly => value
            .as_str()
            .and_then(stamp::parse_date)
            .map(|d| json!(d.format("%Y-%m-%d").to_string()))
            .ok_or_else(|| type_error(value, "Edm.Date")),
        Kind::DateTime => value
            .as_str()
            .filter(|s| s.contains('T'))
            .and_then(stamp::parse)
            .map(|t| json!(stamp::dataverse(t)))
            .ok_or_else(|| type_error(value, "Edm.DateTimeOffset")),
        Kind::Picklist(values) | Kind::State(values) => {
            options(values.iter().map(|(v, _)| *v).collect())
        }
        Kind::Status(values) => options(values.iter().map(|(v, _, _)| *v).collect()),
        Kind::Key | Kind::BigInt | Kind::Lookup(_) | Kind::Customer => {
            Err(type_error(value, "Edm.Guid"))
        }
    }
}

/// Resolves `name@odata.bind` to the attribute and the target table it may name.
fn bind_target(
    entity: &Entity,
    navigation: &str,
) -> Option<(&'static Attribute, Option<&'static str>)> {
    if let Some(attribute) = entity.attribute(navigation)
        && let Kind::Lookup(_) = attribute.kind
    {
        return Some((attribute, None));
    }
    let (name, target) = navigation.rsplit_once('_')?;
    let attribute = entity.attribute(name)?;
    (attribute.kind == Kind::Customer && matches!(target, "account" | "contact"))
        .then_some((attribute, Some(schema::by_logical(target)?.logical)))
}

fn reference(
    core: &Core,
    attribute: &Attribute,
    forced: Option<&str>,
    value: &Value,
) -> Result<Value, ApiError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let text = value
        .as_str()
        .ok_or_else(|| type_error(value, "Edm.String"))?;
    let last = text.rsplit('/').find(|s| !s.is_empty()).unwrap_or(text);
    let parsed = last
        .split_once('(')
        .and_then(|(set, key)| Some((schema::by_set(set)?, parse_guid(key.strip_suffix(')')?)?)));
    let Some((target, id)) = parsed else {
        return Err(bad_request(format!(
            "'{text}' is not a valid entity reference; use /entityset(<guid>)."
        )));
    };
    let allowed = match (attribute.kind, forced) {
        (_, Some(forced)) => target.logical == forced,
        (Kind::Lookup(targets), None) => targets.contains(&target.logical),
        _ => false,
    };
    if !allowed {
        return Err(bad_request(format!(
            "The entity reference '{text}' is of the wrong type for the lookup '{}'.",
            attribute.name
        )));
    }
    let exists = core
        .dataverse
        .get(target.logical)
        .is_some_and(|rows| rows.contains_key(&id));
    if !exists && !core.seeding {
        return Err(row_not_found(target.logical, &id));
    }
    Ok(json!({"id": id, "entity": target.logical}))
}

/// Binds a request body to attribute changes.
fn bind(
    core: &Core,
    entity: &Entity,
    body: &Value,
    id: &str,
) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(input) = body else {
        return Err(bad_request("The request body must be a JSON object."));
    };
    let mut changes = Map::new();
    for (key, value) in input {
        if let Some(navigation) = key.strip_suffix("@odata.bind") {
            let Some((attribute, forced)) = bind_target(entity, navigation) else {
                return Err(bad_request(format!(
                    "An undeclared property '{navigation}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values."
                )));
            };
            changes.insert(
                attribute.name.to_owned(),
                reference(core, attribute, forced, value)?,
            );
            continue;
        }
        if key.contains('@') {
            continue;
        }
        let Some(attribute) = entity.attribute(key) else {
            return Err(bad_request(format!(
                "The property '{key}' does not exist on type 'Microsoft.Dynamics.CRM.{}'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                entity.logical
            )));
        };
        match attribute.kind {
            Kind::Key => {
                if value.as_str().and_then(parse_guid).as_deref() != Some(id) {
                    return Err(bad_request(format!(
                        "The value of '{key}' does not match the key of the record."
                    )));
                }
            }
            Kind::Lookup(_) | Kind::Customer if !value.is_null() => {
                return Err(bad_request(format!(
                    "A 'PrimitiveValue' node with non-null value was found when trying to read the value of the navigation property '{key}'; however, a 'StartArray' node, a 'StartObject' node, or a 'PrimitiveValue' node with null value was expected. Use '{key}@odata.bind'."
                )));
            }
            _ if !attribute.writable => {}
            _ => {
                changes.insert(
                    attribute.name.to_owned(),
                    coerce(entity, attribute, value, core.seeding)?,
                );
            }
        }
    }
    Ok(changes)
}

fn label_of_state(entity: &Entity, state: i64) -> String {
    match entity.attribute("statecode").map(|a| a.kind) {
        Some(Kind::State(states)) => states
            .iter()
            .find(|(v, _)| *v == state)
            .map_or_else(|| state.to_string(), |(_, l)| (*l).to_owned()),
        _ => state.to_string(),
    }
}

/// Makes statecode and statuscode agree, and applies the opportunity rules.
fn resolve_state(
    entity: &Entity,
    current_state: Option<i64>,
    changes: &mut Map<String, Value>,
    seeding: bool,
) -> Result<(), ApiError> {
    let Some(Kind::Status(statuses)) = entity.attribute("statuscode").map(|a| a.kind) else {
        return Ok(());
    };
    let state = changes.get("statecode").and_then(Value::as_i64);
    let status = changes.get("statuscode").and_then(Value::as_i64);
    let state = match (state, status) {
        (state, Some(status)) => {
            let of_status = statuses
                .iter()
                .find(|(v, _, _)| *v == status)
                .map_or(0, |(_, s, _)| *s);
            if state.is_some_and(|s| s != of_status) {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "0x80040203",
                    format!(
                        "{status} is not a valid status code for state code {}State.{} on {}.",
                        entity.label.replace(' ', ""),
                        label_of_state(entity, state.unwrap_or(0)),
                        entity.logical
                    ),
                ));
            }
            changes.insert("statecode".into(), json!(of_status));
            Some(of_status)
        }
        (Some(state), None) => {
            let default = statuses
                .iter()
                .find(|(_, s, _)| *s == state)
                .map_or(1, |(v, _, _)| *v);
            changes.insert("statuscode".into(), json!(default));
            Some(state)
        }
        (None, None) => None,
    };
    if entity.logical != "opportunity" || seeding {
        return Ok(());
    }
    if let Some(closing @ (1 | 2)) = state {
        let (label, message) = if closing == 1 {
            ("Won", "WinOpportunityRequest")
        } else {
            ("Lost", "LoseOpportunityRequest")
        };
        if current_state != Some(closing) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "0x80040203",
                format!(
                    "This message can not be used to set the state of opportunity to {label}. In order to set state of opportunity to {label} use the {message} message instead."
                ),
            ));
        }
    }
    Ok(())
}

fn stamp_row(attributes: &mut Map<String, Value>, version: u64, actor: Actor, creating: bool) {
    let now = json!(stamp::dataverse(Utc::now()));
    let user = json!({"id": if actor == Actor::Api { API_USER_ID } else { SANDBOX_USER_ID }, "entity": "systemuser"});
    if creating {
        attributes.insert("createdon".into(), now.clone());
        attributes.insert("createdby".into(), user.clone());
        attributes.insert("ownerid".into(), user.clone());
    }
    attributes.insert("modifiedon".into(), now);
    attributes.insert("modifiedby".into(), user);
    attributes.insert("versionnumber".into(), json!(version));
}

fn computed(entity: &Entity, attributes: &mut Map<String, Value>) {
    if entity.logical == "contact" {
        let part = |k: &str| {
            attributes
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let full = format!("{} {}", part("firstname"), part("lastname"))
            .trim()
            .to_owned();
        attributes.insert("fullname".into(), json!(full));
    }
}

fn store(core: &mut Core, entity: &Entity, id: &str, row: Row) {
    if core.persistent() {
        core.persist(&ns::dataverse(entity.logical), id, &row);
    }
    core.dataverse
        .entry(entity.logical.to_owned())
        .or_default()
        .insert(id.to_owned(), row);
}

/// Creates a row; `id` comes from the URL (upsert) or the body, else a new GUID.
pub(crate) fn create_row(
    core: &mut Core,
    entity: &Entity,
    id: Option<String>,
    body: &Value,
    actor: Actor,
) -> Result<String, ApiError> {
    let id = id
        .or_else(|| {
            body.get(entity.key)
                .and_then(Value::as_str)
                .and_then(parse_guid)
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if core
        .dataverse
        .get(entity.logical)
        .is_some_and(|rows| rows.contains_key(&id))
    {
        return Err(error(
            StatusCode::PRECONDITION_FAILED,
            "0x80040237",
            "A record with matching key values already exists.",
        ));
    }
    let mut changes = bind(core, entity, body, &id)?;
    resolve_state(entity, Some(0), &mut changes, core.seeding)?;
    let mut attributes = Map::new();
    attributes.insert(entity.key.to_owned(), json!(id));
    if let Some(Kind::Status(statuses)) = entity.attribute("statuscode").map(|a| a.kind) {
        attributes.insert("statecode".into(), json!(0));
        attributes.insert(
            "statuscode".into(),
            json!(statuses.first().map_or(1, |(v, _, _)| *v)),
        );
    }
    if entity.logical == "opportunity" {
        attributes.insert("isrevenuesystemcalculated".into(), json!(false));
    }
    if entity.logical == "transactioncurrency" {
        attributes.insert("currencyprecision".into(), json!(2));
    }
    if entity
        .attribute("transactioncurrencyid")
        .is_some_and(|a| a.kind.is_lookup())
        && let Some((usd, ..)) = schema::CURRENCIES.first()
    {
        let exists = core
            .dataverse
            .get("transactioncurrency")
            .is_some_and(|r| r.contains_key(usd));
        if exists {
            attributes.insert(
                "transactioncurrencyid".into(),
                json!({"id": usd, "entity": "transactioncurrency"}),
            );
        }
    }
    for (key, value) in changes {
        attributes.insert(key, value);
    }
    for attribute in entity
        .attributes
        .iter()
        .filter(|a| a.level == Level::System)
    {
        if attributes.get(attribute.name).is_none_or(Value::is_null) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "0x80040203",
                format!("Attribute '{}' cannot be NULL.", attribute.name),
            ));
        }
    }
    computed(entity, &mut attributes);
    let version = core.next_dataverse_version();
    stamp_row(&mut attributes, version, actor, true);
    let row = Row {
        version,
        attributes,
    };
    store(core, entity, &id, row);
    Ok(id)
}

/// Updates a row.
pub(crate) fn update_row(
    core: &mut Core,
    entity: &Entity,
    id: &str,
    body: &Value,
    actor: Actor,
) -> Result<(), ApiError> {
    let mut row = core
        .dataverse
        .get(entity.logical)
        .and_then(|rows| rows.get(id))
        .cloned()
        .ok_or_else(|| row_not_found(entity.logical, id))?;
    let mut changes = bind(core, entity, body, id)?;
    let current_state = row.attributes.get("statecode").and_then(Value::as_i64);
    if entity.logical == "opportunity" && current_state.is_some_and(|s| s != 0) {
        let reopening = changes.get("statecode").and_then(Value::as_i64) == Some(0);
        if !reopening {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "0x80040203",
                format!(
                    "The opportunity is closed (statecode {}) and cannot be updated; reopen it with statecode 0 first.",
                    current_state.unwrap_or(0)
                ),
            ));
        }
    }
    resolve_state(entity, current_state, &mut changes, core.seeding)?;
    for (key, value) in changes {
        row.attributes.insert(key, value);
    }
    computed(entity, &mut row.attributes);
    row.version = core.next_dataverse_version();
    stamp_row(&mut row.attributes, row.version, actor, false);
    store(core, entity, id, row);
    Ok(())
}

/// Deletes a row, leaving a tombstone for change tracking.
pub(crate) fn delete_row(core: &mut Core, entity: &Entity, id: &str) -> Result<(), ApiError> {
    let removed = core
        .dataverse
        .get_mut(entity.logical)
        .and_then(|rows| rows.remove(id));
    if removed.is_none() {
        return Err(row_not_found(entity.logical, id));
    }
    core.unpersist(&ns::dataverse(entity.logical), id);
    let version = core.next_dataverse_version();
    let tombstone = Tombstone {
        entity: entity.logical.to_owned(),
        id: id.to_owned(),
        version,
    };
    core.persist(ns::TOMBSTONE, &format!("{version:020}"), &json!(tombstone));
    core.tombstones.push(tombstone);
    Ok(())
}

fn entity_id_url(sandbox: &Sandbox, entity: &Entity, id: &str) -> String {
    format!(
        "{}/api/data/v9.2/{}({id})",
        sandbox.urls().dataverse,
        entity.set
    )
}

/// What a write answers with `return=representation`: the `$select` asked for (a bad
/// one fails the request after the write) and whether annotations are wanted.
struct Representation {
    select: Result<Option<Vec<&'static Attribute>>, ApiError>,
    annotations: bool,
}

impl Representation {
    fn of(entity: &Entity, request: &Request) -> Option<Representation> {
        let prefer = Prefer::parse(&request.headers);
        prefer.representation.then(|| Representation {
            select: read::parse_select(entity, &body::query_pairs(request.uri.query())),
            annotations: prefer.annotations.is_some(),
        })
    }
}

/// The written row's version and, when asked for, its rendering; read in place
/// while the state is still locked.
fn written_row(
    core: &Core,
    entity: &Entity,
    id: &str,
    representation: Option<&Representation>,
) -> Result<(u64, Option<Map<String, Value>>), ApiError> {
    let row = core
        .dataverse
        .get(entity.logical)
        .and_then(|rows| rows.get(id))
        .ok_or_else(|| row_not_found(entity.logical, id))?;
    let body = representation.and_then(|r| {
        let select = r.select.as_ref().ok()?;
        Some(read::render(entity, row, select.as_deref(), r.annotations))
    });
    Ok((row.version, body))
}

fn written(
    sandbox: &Sandbox,
    entity: &Entity,
    id: &str,
    (version, body): (u64, Option<Map<String, Value>>),
    representation: Option<Representation>,
    created: bool,
) -> Result<Response, ApiError> {
    let mut response = match representation {
        Some(representation) => {
            let select = representation.select?;
            let mut body = body.unwrap_or_default();
            body.insert(
                "@odata.context".into(),
                json!(read::context(sandbox, entity, select.as_deref(), true)),
            );
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = (status, Json(Value::Object(body))).into_response();
            response.headers_mut().insert(
                "preference-applied",
                HeaderValue::from_static("return=representation"),
            );
            response
        }
        None => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            if let Ok(value) = HeaderValue::from_str(&entity_id_url(sandbox, entity, id)) {
                response.headers_mut().insert("odata-entityid", value);
            }
            response
        }
    };
    if let Ok(value) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

/// `POST /{set}`.
pub(super) fn create(
    sandbox: &Sandbox,
    entity: &'static Entity,
    request: &Request,
) -> Result<Response, ApiError> {
    let input =
        body::json(&request.headers, &request.body, &["application/json"]).map_err(body_error)?;
    let representation = Representation::of(entity, request);
    let (id, row) = sandbox.with_core(|core| {
        let id = create_row(core, entity, None, &input, request.actor)?;
        let row = written_row(core, entity, &id, representation.as_ref())?;
        Ok::<_, ApiError>((id, row))
    })?;
    written(sandbox, entity, &id, row, representation, true)
}

/// Parses a weak eTag `W/"n"` to its version.
pub(crate) fn etag_version(text: &str) -> Option<u64> {
    text.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// `PATCH /{set}(id)`: update, or create with that id (upsert), under `If-Match` /
/// `If-None-Match` conditions.
pub(super) fn patch(
    sandbox: &Sandbox,
    entity: &'static Entity,
    id: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    let input =
        body::json(&request.headers, &request.body, &["application/json"]).map_err(body_error)?;
    let if_match = body::header_text(&request.headers, "if-match").map(str::to_owned);
    let if_none_match = body::header_text(&request.headers, "if-none-match").map(str::to_owned);
    let representation = Representation::of(entity, request);
    let (row, created) = sandbox.with_core(|core| {
        let existing = core.dataverse.get(entity.logical).and_then(|rows| rows.get(id)).map(|r| r.version);
        match (if_match.as_deref(), existing) {
            (Some(_), None) => return Err(row_not_found(entity.logical, id)),
            (Some(tag), Some(version)) if tag != "*" && etag_version(tag) != Some(version) => {
                return Err(error(
                    StatusCode::PRECONDITION_FAILED,
                    "0x80060882",
                    "The version of the existing record doesn't match the RowVersion property provided.",
                ));
            }
            _ => {}
        }
        if if_none_match.as_deref() == Some("*") && existing.is_some() {
            return Err(error(StatusCode::PRECONDITION_FAILED, "0x80040237", "A record with matching key values already exists."));
        }
        let created = existing.is_none();
        if created {
            create_row(core, entity, Some(id.to_owned()), &input, request.actor)?;
        } else {
            update_row(core, entity, id, &input, request.actor)?;
        }
        Ok((written_row(core, entity, id, representation.as_ref())?, created))
    })?;
    written(sandbox, entity, id, row, representation, created)
}

/// `DELETE /{set}(id)`.
pub(super) fn delete(
    sandbox: &Sandbox,
    entity: &'static Entity,
    id: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    let if_match = body::header_text(&request.headers, "if-match").map(str::to_owned);
    sandbox.with_core(|core| {
        let existing = core.dataverse.get(entity.logical).and_then(|rows| rows.get(id)).map(|r| r.version);
        if let (Some(tag), Some(version)) = (if_match.as_deref(), existing)
            && tag != "*" && etag_version(tag) != Some(version) {
                return Err(error(
                    StatusCode::PRECONDITION_FAILED,
                    "0x80060882",
                    "The version of the existing record doesn't match the RowVersion property provided.",
                ));
            }
        delete_row(core, entity, id)
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Adds the base currencies when the table is empty.
pub(crate) fn seed_currencies(core: &mut Core) {
    let Some(entity) = schema::by_logical("transactioncurrency") else {
        return;
    };
    if core
        .dataverse
        .get(entity.logical)
        .is_some_and(|rows| !rows.is_empty())
    {
        return;
    }
    for (id, code, name, symbol, rate) in schema::CURRENCIES {
        let body = json!({"isocurrencycode": code, "currencyname": name, "currencysymbol": symbol, "exchangerate": rate});
        if let Err(e) = create_row(core, entity, Some((*id).to_owned()), &body, Actor::User) {
            tracing::warn!(code, message = e.message, "cannot seed a currency");
        }
    }
}

/// Seeds may bind a customer lookup without its target suffix
/// (`customerid@odata.bind: /accounts(…)`); the Web API itself refuses that.
fn lenient_customer_binds(entity: &Entity, record: &Value) -> Value {
    let Value::Object(map) = record else {
        return record.clone();
    };
    let out = map
        .iter()
        .map(|(key, value)| {
            let customer = key
                .strip_suffix("@odata.bind")
                .and_then(|name| entity.attribute(name))
                .filter(|a| a.kind == Kind::Customer);
            let target = value
                .as_str()
                .and_then(|v| v.rsplit('/').next())
                .and_then(|v| v.split('(').next())
                .and_then(schema::by_set)
                .map(|e| e.logical);
            match (customer, target) {
                (Some(attribute), Some(target)) => (
                    format!("{}_{target}@odata.bind", attribute.name),
                    value.clone(),
                ),
                _ => (key.clone(), value.clone()),
            }
        })
        .collect();
    Value::Object(out)
}

/// Creates (or, when the id exists, updates) seed records of one entity set.
pub(crate) fn apply_seed(core: &mut Core, set: &str, records: &[Value]) -> Result<usize, String> {
    let entity = schema::by_set(set)
        .or_else(|| schema::by_logical(set))
        .ok_or_else(|| format!("dataverse: unknown entity set '{set}'"))?;
    for (index, record) in records.iter().enumerate() {
        let record = &lenient_customer_binds(entity, record);
        let id = record
            .get(entity.key)
            .and_then(Value::as_str)
            .and_then(parse_guid);
        let exists = id.as_ref().is_some_and(|id| {
            core.dataverse
                .get(entity.logical)
                .is_some_and(|r| r.contains_key(id))
        });
        let result = match (&id, exists) {
            (Some(id), true) => update_row(core, entity, id, record, Actor::User).map(|_| ()),
            _ => create_row(core, entity, id.clone(), record, Actor::User).map(|_| ()),
        };
        result.map_err(|e| format!("dataverse {set}[{index}]: {}", e.message))?;
    }
    Ok(records.len())
}
