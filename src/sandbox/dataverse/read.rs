//! Dataverse reads: the row's JSON form (`@odata.etag`, lookups as `_name_value`,
//! optional annotations), `$select`, get by key, collection queries with
//! `$filter`/`$orderby`/`$top`, `Prefer: odata.maxpagesize` paging with an opaque
//! `$skiptoken` cookie, and change tracking (`Prefer: odata.track-changes`,
//! `$deltatoken`, `$deletedEntity` tombstones).

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::schema::{Attribute, Entity, Kind};
use super::write::etag_version;
use super::{Request, Row, bad_request, error, row_not_found};
use crate::sandbox::body::{self, Prefer};
use crate::sandbox::error::ApiError;
use crate::sandbox::odata::{self, CmpOp, Filter, Literal, Operand, OrderKey};
use crate::sandbox::state::Sandbox;

const OPTIONS: &[&str] = &[
    "$select",
    "$filter",
    "$orderby",
    "$top",
    "$skiptoken",
    "$deltatoken",
    "$count",
    "$expand",
    "$apply",
    "$skip",
];

fn unknown_property(entity: &Entity, name: &str) -> ApiError {
    bad_request(format!(
        "Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{}'.",
        entity.logical
    ))
}

/// The attributes `$select` names (logical names, or `_name_value` for lookups).
pub(crate) fn parse_select(
    entity: &Entity,
    pairs: &[(String, String)],
) -> Result<Option<Vec<&'static Attribute>>, ApiError> {
    let Some(text) = body::query_value(pairs, "$select") else {
        return Ok(None);
    };
    let mut selected = Vec::new();
    for name in odata::parse_select(text) {
        let attribute = entity
            .queryable(&name)
            .or_else(|| entity.attribute(&name))
            .ok_or_else(|| unknown_property(entity, &name))?;
        selected.push(attribute);
    }
    Ok(Some(selected))
}

fn formatted(attribute: &Attribute, value: &Value) -> Option<String> {
    let n = value.as_i64();
    match attribute.kind {
        Kind::Picklist(options) | Kind::State(options) => options
            .iter()
            .find(|(v, _)| Some(*v) == n)
            .map(|(_, l)| (*l).to_owned()),
        Kind::Status(options) => options
            .iter()
            .find(|(v, _, _)| Some(*v) == n)
            .map(|(_, _, l)| (*l).to_owned()),
        Kind::Boolean => value
            .as_bool()
            .map(|b| if b { "Yes".to_owned() } else { "No".to_owned() }),
        _ => None,
    }
}

/// A row's JSON form, all attributes or the selected ones (the key is always there).
pub(crate) fn render(
    entity: &Entity,
    row: &Row,
    select: Option<&[&'static Attribute]>,
    annotations: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        "@odata.etag".into(),
        Value::String(format!("W/\"{}\"", row.version)),
    );
    match select {
        Some(selected) => {
            for attribute in selected {
                render_attribute(&mut out, attribute, row, annotations);
            }
        }
        None => {
            for attribute in entity.attributes {
                render_attribute(&mut out, attribute, row, annotations);
            }
        }
    }
    if let Some(key) = row.attributes.get(entity.key) {
        out.entry(entity.key).or_insert_with(|| key.clone());
    }
    out
}

fn render_attribute(
    out: &mut Map<String, Value>,
    attribute: &Attribute,
    row: &Row,
    annotations: bool,
) {
    let property = Entity::property(attribute);
    let stored = row.attributes.get(attribute.name).unwrap_or(&Value::Null);
    if attribute.kind.is_lookup() {
        let id = stored.get("id").cloned().unwrap_or(Value::Null);
        let target = stored.get("entity").filter(|_| annotations);
        let annotation =
            target.map(|_| format!("{property}@Microsoft.Dynamics.CRM.lookuplogicalname"));
        out.insert(property, id);
        if let (Some(name), Some(target)) = (annotation, target) {
            out.insert(name, target.clone());
        }
        return;
    }
    if annotations && let Some(label) = formatted(attribute, stored) {
        out.insert(
            format!("{property}@OData.Community.Display.V1.FormattedValue"),
            Value::String(label),
        );
    }
    out.insert(property, stored.clone());
}

/// `@odata.context` for a set, a selection and a single row.
pub(crate) fn context(
    sandbox: &Sandbox,
    entity: &Entity,
    select: Option<&[&'static Attribute]>,
    single: bool,
) -> String {
    let columns = select
        .map(|s| {
            format!(
                "({})",
                s.iter()
                    .map(|a| Entity::property(a))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .unwrap_or_default();
    let suffix = if single { "/$entity" } else { "" };
    format!(
        "{}/api/data/v9.2/$metadata#{}{columns}{suffix}",
        sandbox.urls().dataverse,
        entity.set
    )
}

fn preference_applied(response: &mut Response, applied: &[String]) {
    if applied.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&applied.join(",")) {
        response.headers_mut().insert("preference-applied", value);
    }
}

/// `GET /{set}(id)`.
pub(super) fn get(
    sandbox: &Sandbox,
    entity: &'static Entity,
    id: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    let pairs = body::query_pairs(request.uri.query());
    let select = parse_select(entity, &pairs)?;
    let prefer = Prefer::parse(&request.headers);
    let not_modified = body::header_text(&request.headers, "if-none-match").and_then(etag_version);
    let annotations = prefer.annotations.is_some();
    // Rendered under the lock: the row is read in place, never copied.
    let rendered = sandbox
        .with_core(|core| {
            let row = core
                .dataverse
                .get(entity.logical)
                .and_then(|rows| rows.get(id))?;
            if not_modified == Some(row.version) {
                return Some(None);
            }
            Some(Some(render(entity, row, select.as_deref(), annotations)))
        })
        .ok_or_else(|| row_not_found(entity.logical, id))?;
    let Some(rendered) = rendered else {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    };
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(context(sandbox, entity, select.as_deref(), true)),
    );
    out.extend(rendered);
    let mut response = Json(Value::Object(out)).into_response();
    if prefer.annotations.is_some() {
        preference_applied(
            &mut response,
            &["odata.include-annotations=\"*\"".to_owned()],
        );
    }
    Ok(response)
}

fn check_paths(entity: &Entity, filter: &Filter) -> Result<(), ApiError> {
    for used in filter.paths() {
        let name = used.path.join("/");
        if used.path.len() != 1 || used.collection || entity.queryable(&name).is_none() {
            return Err(unknown_property(entity, &name));
        }
    }
    Ok(())
}

/// The paging cookie in `$skiptoken`: offset of the next row and, while tracking
/// changes, the row version the delta link will start from.
fn cookie(offset: usize, page: usize, delta: Option<u64>) -> String {
    let tracking = delta.map_or_else(
        || "istracking=\"False\"".to_owned(),
        |v| format!("istracking=\"True\" deltaversion=\"{v}\""),
    );
    format!("<cookie pagenumber=\"{page}\" pagingcookie=\"{offset}\" {tracking} />")
}

fn cookie_value<'a>(cookie: &'a str, name: &str) -> Option<&'a str> {
    let start = cookie.find(&format!("{name}=\""))? + name.len() + 2;
    let end = cookie[start..].find('"')?;
    Some(&cookie[start..start + end])
}

fn delta_token(version: u64) -> String {
    format!("{version}!{}", Utc::now().format("%m/%d/%Y %H:%M:%S"))
}

fn link(
    sandbox: &Sandbox,
    entity: &Entity,
    pairs: &[(String, String)],
    drop: &[&str],
    add: (&str, String),
) -> String {
    let mut next: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !drop.contains(&k.as_str()))
        .cloned()
        .collect();
    next.push((add.0.to_owned(), add.1));
    format!(
        "{}/api/data/v9.2/{}?{}",
        sandbox.urls().dataverse,
        entity.set,
        body::encode_query(&next)
    )
}

struct Query {
    select: Option<Vec<&'static Attribute>>,
    /// The attributes `$filter` and the ordering read: rows are tested and sorted
    /// on this narrow rendering, and only the matches are rendered in full.
    compared: Vec<&'static Attribute>,
    filter: Option<Filter>,
    order: Vec<OrderKey>,
    top: Option<usize>,
    count: bool,
}

fn parse_query(
    entity: &Entity,
    pairs: &[(String, String)],
    tracking: bool,
) -> Result<Query, ApiError> {
    for (key, _) in pairs {
        if key.starts_with('$') && !OPTIONS.contains(&key.as_str()) {
            return Err(bad_request(format!(
                "The query parameter {key} is not supported."
            )));
        }
    }
    if body::query_value(pairs, "$skip").is_some() {
        return Err(bad_request("The query parameter $skip is not supported."));
    }
    for option in ["$expand", "$apply"] {
        if body::query_value(pairs, option).is_some() {
            return Err(error(
                StatusCode::NOT_IMPLEMENTED,
                "0x80060888",
                format!("The sandbox does not emulate {option}."),
            ));
        }
    }
    if tracking {
        for option in ["$filter", "$orderby", "$top"] {
            if body::query_value(pairs, option).is_some() {
                return Err(bad_request(format!(
                    "The query option {option} is not supported with change tracking (Prefer: odata.track-changes)."
                )));
            }
        }
    }
    let filter = body::query_value(pairs, "$filter")
        .map(|text| {
            odata::parse_filter(text).map_err(|e| bad_request(format!("Invalid $filter: {e}")))
        })
        .transpose()?;
    if let Some(filter) = &filter {
        check_paths(entity, filter)?;
    }
    let order = body::query_value(pairs, "$orderby")
        .map(|text| {
            odata::parse_orderby(text).map_err(|e| bad_request(format!("Invalid $orderby: {e}")))
        })
        .transpose()?
        .unwrap_or_default();
    for key in &order {
        let name = key.path.join("/");
        if entity.queryable(&name).is_none() {
            return Err(unknown_property(entity, &name));
        }
    }
    let top = body::query_value(pairs, "$top")
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| bad_request(format!("Invalid $top value '{v}'.")))
        })
        .transpose()?;
    let count = body::query_value(pairs, "$count") == Some("true");
    let mut compared: Vec<&'static Attribute> = Vec::new();
    let filter_paths = filter.iter().flat_map(|f| f.paths()).map(|u| u.path);
    let order_paths = order.iter().map(|k| k.path.clone());
    let default_paths = [vec!["createdon".to_owned()], vec![entity.key.to_owned()]];
    for path in filter_paths.chain(order_paths).chain(default_paths) {
        if let Some(attribute) = entity.queryable(&path.join("/"))
            && !compared.iter().any(|a| a.name == attribute.name)
        {
            compared.push(attribute);
        }
    }
    Ok(Query {
        compared,
        select: parse_select(entity, pairs)?,
        filter,
        order,
        top,
        count,
    })
}

/// A conjunct `column eq 'text'` (or a GUID) of the filter that an index can answer:
/// the column, the literal and whether the literal also reads as a number. Only rows
/// the index names can pass the whole filter.
fn equality(entity: &Entity, filter: &Filter) -> Option<(&'static Attribute, String, bool)> {
    match filter {
        Filter::And(a, b) => equality(entity, a).or_else(|| equality(entity, b)),
        Filter::Compare(left, CmpOp::Eq, right) => {
            let (path, literal) = match (left, right) {
                (Operand::Path(path), Operand::Literal(literal))
                | (Operand::Literal(literal), Operand::Path(path)) => (path, literal),
                _ => return None,
            };
            let [name] = path.as_slice() else {
                return None;
            };
            let attribute = entity.queryable(name)?;
            match literal {
                Literal::String(text) => {
                    Some((attribute, text.clone(), text.parse::<f64>().is_ok()))
                }
                Literal::Guid(guid) => Some((attribute, guid.clone(), false)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `GET /{set}`: a query, a page of one, or a change-tracking delta.
pub(super) fn query(
    sandbox: &Sandbox,
    entity: &'static Entity,
    request: &Request,
) -> Result<Response, ApiError> {
    let pairs = body::query_pairs(request.uri.query());
    let prefer = Prefer::parse(&request.headers);
    if let Some(token) = body::query_value(&pairs, "$deltatoken") {
        return delta(sandbox, entity, &pairs, token, &prefer);
    }
    let query = parse_query(entity, &pairs, prefer.track_changes)?;
    let annotations = prefer.annotations.is_some();
    let default_order = [
        OrderKey {
            path: vec!["createdon".into()],
            descending: false,
        },
        OrderKey {
            path: vec![entity.key.into()],
            descending: false,
        },
    ];
    let order = if query.order.is_empty() {
        &default_order[..]
    } else {
        &query.order[..]
    };
    let token = body::query_value(&pairs, "$skiptoken");
    let offset = match token {
        None => 0,
        Some(t) => cookie_value(t, "pagingcookie")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad_request("Invalid $skiptoken."))?,
    };
    // Rows are tested and sorted on their compared attributes, and only the page is
    // rendered in full, all in place: no row is copied out of the state.
    let (value, total, version, page, limit) = sandbox.with_core(|core| {
        let version = core.counters.dataverse_version;
        let max_page = core.settings.dataverse_max_page_size.max(1);
        let page = prefer
            .max_page_size
            .filter(|n| *n > 0)
            .map(|n| n.min(max_page));
        let limit = match (page, query.top) {
            (Some(page), _) => page,
            (None, Some(top)) => top.min(max_page),
            (None, None) => max_page,
        };
        let mut matched: Vec<(Value, &Row)> = match core.dataverse.get_mut(entity.logical) {
            None => Vec::new(),
            Some(table) => {
                let candidates = match query.filter.as_ref().and_then(|f| equality(entity, f)) {
                    Some((attribute, literal, numeric)) => {
                        table.candidates(attribute, &literal, numeric)
                    }
                    None => table.values().collect(),
                };
                candidates
                    .into_iter()
                    .filter_map(|row| {
                        let json = Value::Object(render(entity, row, Some(&query.compared), false));
                        query
                            .filter
                            .as_ref()
                            .is_none_or(|f| f.matches(&json, true))
                            .then_some((json, row))
                    })
                    .collect()
            }
        };
        matched.sort_by(|(a, _), (b, _)| odata::compare_records(a, b, order, true));
        let total = matched.len();
        let start = offset.min(total);
        let end = start.saturating_add(limit).min(total);
        let value: Vec<Value> = matched[start..end]
            .iter()
            .map(|(_, row)| {
                Value::Object(render(entity, row, query.select.as_deref(), annotations))
            })
            .collect();
        (value, total, version, page, limit)
    });
    let delta_from = token
        .and_then(|t| cookie_value(t, "deltaversion"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(version);
    let end = offset.min(total).saturating_add(limit).min(total);
    let more = end < total && !(page.is_none() && query.top.is_some());
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(context(sandbox, entity, query.select.as_deref(), false)),
    );
    if query.count {
        out.insert("@odata.count".into(), json!(total.min(5000)));
    }
    out.insert("value".into(), Value::Array(value));
    if more {
        let page_number = end / limit.max(1) + 1;
        let tracking = prefer.track_changes.then_some(delta_from);
        out.insert(
            "@odata.nextLink".into(),
            json!(link(
                sandbox,
                entity,
                &pairs,
                &["$skiptoken"],
                ("$skiptoken", cookie(end, page_number, tracking))
            )),
        );
    } else if prefer.track_changes {
        out.insert(
            "@odata.deltaLink".into(),
            json!(link(
                sandbox,
                entity,
                &pairs,
                &["$skiptoken", "$deltatoken"],
                ("$deltatoken", delta_token(delta_from))
            )),
        );
    }
    let mut response = Json(Value::Object(out)).into_response();
    let mut applied = Vec::new();
    if let Some(page) = page {
        applied.push(format!("odata.maxpagesize={page}"));
    }
    if prefer.track_changes {
        applied.push("odata.track-changes".to_owned());
    }
    if annotations {
        applied.push("odata.include-annotations=\"*\"".to_owned());
    }
    preference_applied(&mut response, &applied);
    Ok(response)
}

fn delta(
    sandbox: &Sandbox,
    entity: &'static Entity,
    pairs: &[(String, String)],
    token: &str,
    prefer: &Prefer,
) -> Result<Response, ApiError> {
    let select = parse_select(entity, pairs)?;
    let since: u64 = token
        .split('!')
        .next()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "0x80044352",
                "Version stamp associated with the client has expired. Please perform a full sync.",
            )
        })?;
    let annotations = prefer.annotations.is_some();
    let (mut value, tombstones, version) = sandbox.with_core(|core| {
        let mut rows: Vec<&Row> = core
            .dataverse
            .get(entity.logical)
            .map(|r| r.values().filter(|row| row.version > since).collect())
            .unwrap_or_default();
        rows.sort_by_key(|row| row.version);
        let value: Vec<Value> = rows
            .into_iter()
            .map(|row| Value::Object(render(entity, row, select.as_deref(), annotations)))
            .collect();
        let tombstones: Vec<String> = core
            .tombstones
            .iter()
            .filter(|t| t.entity == entity.logical && t.version > since)
            .map(|t| t.id.clone())
            .collect();
        (value, tombstones, core.counters.dataverse_version)
    });
    if since > version {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "0x80044352",
            "Version stamp associated with the client has expired. Please perform a full sync.",
        ));
    }
    let base = format!("{}/api/data/v9.2", sandbox.urls().dataverse);
    value.extend(tombstones.into_iter().map(|id| {
        json!({"@odata.context": format!("{base}/$metadata#{}/$deletedEntity", entity.set), "id": id, "reason": "deleted"})
    }));
    let context = context(sandbox, entity, select.as_deref(), false);
    let out = json!({
        "@odata.context": format!("{context}/$delta"),
        "value": value,
        "@odata.deltaLink": link(sandbox, entity, pairs, &["$deltatoken", "$skiptoken"], ("$deltatoken", delta_token(version))),
    });
    let mut response = Json(out).into_response();
    preference_applied(&mut response, &["odata.track-changes".to_owned()]);
    Ok(response)
}
