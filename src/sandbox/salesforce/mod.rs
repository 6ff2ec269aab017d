//! Salesforce REST API (`/services/data/vXX.X/`) and its token endpoint: sObject get,
//! create (201), update (204), delete, upsert by external id (201 / 200 / 300), SOQL
//! queries with `nextRecordsUrl` paging, sObject collections, `describe`, `limits`,
//! `updated`, error arrays, and the API allocation (`403 REQUEST_LIMIT_EXCEEDED`).

mod composite;
mod describe;
pub mod ids;
mod query;
pub(crate) mod record;
pub(crate) mod schema;
mod soql;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub(crate) use query::Cursor;

use self::record::bad;
use self::schema::{Field, SObject};
use super::auth;
use super::body::{self, BodyError};
use super::error::{ApiError, Service};
use super::front;
use super::identity;
use super::stamp;
use super::state::{Actor, Sandbox};

/// The Salesforce router (My Domain host: token endpoint and REST API).
pub fn router(sandbox: Sandbox) -> Router {
    let data = Router::new()
        .route("/services/data/{version}", get(resources))
        .route("/services/data/{version}/{*rest}", any(api))
        .layer(middleware::from_fn_with_state(
            (sandbox.clone(), Service::Salesforce),
            auth::require_token,
        ));
    let routes = Router::new()
        .route("/services/oauth2/token", post(identity::salesforce_token))
        .route("/services/data", get(versions))
        .merge(data)
        .with_state(sandbox.clone());
    front::wrap(routes, sandbox, Service::Salesforce)
}

/// Maps a body problem to the Salesforce answer.
pub(crate) fn body_error(error: BodyError) -> ApiError {
    match error {
        BodyError::UnsupportedMediaType(media) => ApiError::new(
            Service::Salesforce,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!("Content-Type header specified in HTTP request is not supported: {media}"),
        ),
        BodyError::Malformed(detail) => bad(
            "JSON_PARSER_ERROR",
            format!("Unexpected character in the request body: {detail}"),
            &[],
        ),
    }
}

/// The fields `?fields=` names.
pub(crate) fn fields_param(
    sobject: &SObject,
    pairs: &[(String, String)],
) -> Result<Option<Vec<&'static Field>>, ApiError> {
    let Some(list) = body::query_value(pairs, "fields") else {
        return Ok(None);
    };
    list.split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|name| {
            sobject.field(name).ok_or_else(|| {
                bad("INVALID_FIELD", format!("No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", sobject.name), &[])
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn check_version(version: &str) -> Result<f64, ApiError> {
    version
        .strip_prefix('v')
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| (20.0..=63.0).contains(v))
        .ok_or_else(record::not_found)
}

async fn versions() -> Json<Value> {
    Json(describe::versions())
}

async fn resources(Path(version): Path<String>) -> Result<Json<Value>, ApiError> {
    check_version(&version)?;
    Ok(Json(describe::resources(&version)))
}

/// A request to the REST API, from a client or from the admin API.
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) actor: Actor,
}

async fn api(
    State(sandbox): State<Sandbox>,
    Path((version, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let numeric = check_version(&version)?;
    let request = Request {
        method,
        uri,
        headers,
        body,
        actor: Actor::Api,
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    dispatch(&sandbox, &version, numeric, &segments, &request)
}

fn sobject(name: &str) -> Result<&'static SObject, ApiError> {
    schema::by_name(name).ok_or_else(|| {
        ApiError::new(
            Service::Salesforce,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!(
                "The requested resource does not exist: sObject type '{name}' is not supported."
            ),
        )
    })
}

/// Routes a request by its path below `/services/data/vXX.X/`.
pub(crate) fn dispatch(
    sandbox: &Sandbox,
    version: &str,
    numeric: f64,
    segments: &[String],
    request: &Request,
) -> Result<Response, ApiError> {
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = request.method.clone();
    match (parts.as_slice(), method) {
        (["sobjects"], Method::GET) => Ok(Json(describe::global(version)).into_response()),
        (["sobjects", name], Method::GET) => {
            Ok(Json(describe::basic(version, sobject(name)?)).into_response())
        }
        (["sobjects", name], Method::POST) => create(sandbox, sobject(name)?, request),
        (["sobjects", name, "describe"], Method::GET) => {
            Ok(Json(describe::describe(version, sobject(name)?)).into_response())
        }
        (["sobjects", name, "updated"], Method::GET) => updated(sandbox, sobject(name)?, request),
        (["sobjects", name, id], method) => {
            by_id(sandbox, version, sobject(name)?, id, method, request)
        }
        (["sobjects", name, field, value], method) => by_external_id(
            sandbox,
            version,
            numeric,
            sobject(name)?,
            field,
            value,
            method,
            request,
        ),
        (["query" | "queryAll"], Method::GET) => query::run(sandbox, version, request),
        (["query" | "queryAll", locator], Method::GET) => query::more(sandbox, version, locator),
        (["composite", "sobjects", rest @ ..], _) if rest.len() <= 2 => composite::collection(
            sandbox,
            version,
            segments.get(2..).unwrap_or_default(),
            request,
        ),
        (["limits"], Method::GET) => {
            let (used, limit) = sandbox
                .with_core(|core| (core.salesforce_api_used, core.settings.salesforce_api_limit));
            Ok(Json(describe::limits(used, limit)).into_response())
        }
        _ => Err(record::not_found()),
    }
}

fn create(
    sandbox: &Sandbox,
    sobject: &'static SObject,
    request: &Request,
) -> Result<Response, ApiError> {
    let input =
        body::json(&request.headers, &request.body, &["application/json"]).map_err(body_error)?;
    let id =
        sandbox.with_core(|core| record::create(core, sobject, &input, None, request.actor))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "success": true, "errors": []})),
    )
        .into_response())
}

fn by_id(
    sandbox: &Sandbox,
    version: &str,
    sobject: &'static SObject,
    id: &str,
    method: Method,
    request: &Request,
) -> Result<Response, ApiError> {
    if ids::normalize(id).is_none_or(|id| !id.starts_with(sobject.prefix)) {
        return Err(ApiError::new(
            Service::Salesforce,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {id}"),
        ));
    }
    match method {
        Method::GET => {
            let pairs = body::query_pairs(request.uri.query());
            let fields = fields_param(sobject, &pairs)?;
            let record = sandbox
                .with_core(|core| record::lookup(core, sobject.name, id).map(|(_, r)| r.clone()))
                .ok_or_else(record::not_found)?;
            Ok(Json(record::render(sobject, &record, fields.as_deref(), version)).into_response())
        }
        Method::PATCH => {
            let input = body::json(&request.headers, &request.body, &["application/json"])
                .map_err(body_error)?;
            sandbox.with_core(|core| record::update(core, sobject, id, &input, request.actor))?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Method::DELETE => {
            sandbox.with_core(|core| record::delete(core, sobject, id))?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(ApiError::generic(
            Service::Salesforce,
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "HTTP Method '{}' not allowed. Allowed are GET,PATCH,DELETE",
                request.method
            ),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn by_external_id(
    sandbox: &Sandbox,
    version: &str,
    numeric: f64,
    sobject: &'static SObject,
    field_name: &str,
    value: &str,
    method: Method,
    request: &Request,
) -> Result<Response, ApiError> {
    let field = sobject
        .field(field_name)
        .filter(|f| f.external_id || f.name == "Id")
        .ok_or_else(|| {
            ApiError::new(
                Service::Salesforce,
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!(
                    "Provided external ID field does not exist or is not accessible: {field_name}"
                ),
            )
        })?;
    let matches = sandbox.with_core(|core| match field.name {
        "Id" => record::lookup(core, sobject.name, value)
            .map(|(id, _)| vec![id])
            .unwrap_or_default(),
        _ => record::find_by(core, sobject, field, value),
    });
    if matches.len() > 1 {
        let urls: Vec<String> = matches
            .iter()
            .map(|id| record::url(version, sobject.name, id))
            .collect();
        return Ok((StatusCode::MULTIPLE_CHOICES, Json(json!(urls))).into_response());
    }
    match method {
        Method::GET => {
            let id = matches.first().ok_or_else(record::not_found)?;
            by_id(sandbox, version, sobject, id, Method::GET, request)
        }
        Method::DELETE => {
            let id = matches.first().ok_or_else(record::not_found)?;
            by_id(sandbox, version, sobject, id, Method::DELETE, request)
        }
        Method::PATCH => upsert(
            sandbox,
            version,
            numeric,
            sobject,
            field,
            value,
            matches.first(),
            request,
        ),
        _ => Err(ApiError::generic(
            Service::Salesforce,
            StatusCode::METHOD_NOT_ALLOWED,
            "HTTP Method not allowed. Allowed are GET,PATCH,DELETE",
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn upsert(
    sandbox: &Sandbox,
    version: &str,
    numeric: f64,
    sobject: &'static SObject,
    field: &'static Field,
    value: &str,
    existing: Option<&String>,
    request: &Request,
) -> Result<Response, ApiError> {
    let input =
        body::json(&request.headers, &request.body, &["application/json"]).map_err(body_error)?;
    if let Some(map) = input.as_object() {
        if map.keys().any(|k| k.eq_ignore_ascii_case("Id")) {
            return Err(bad(
                "INVALID_FIELD",
                "The Id field should not be specified in the sobject data.",
                &[],
            ));
        }
        if field.name != "Id" && map.keys().any(|k| k.eq_ignore_ascii_case(field.name)) {
            return Err(bad(
                "INVALID_FIELD",
                format!(
                    "The external ID field {} should not be specified in the sobject data when upserting by it.",
                    field.name
                ),
                &[field.name],
            ));
        }
    }
    let pairs = body::query_pairs(request.uri.query());
    let update_only = body::query_value(&pairs, "updateOnly") == Some("true");
    let (id, created) = sandbox.with_core(|core| match existing {
        Some(id) => record::update(core, sobject, id, &input, request.actor).map(|id| (id, false)),
        None if update_only || field.name == "Id" => Err(record::not_found()),
        None => record::create(
            core,
            sobject,
            &input,
            Some((field, json!(value))),
            request.actor,
        )
        .map(|id| (id, true)),
    })?;
    if !created && numeric < 46.0 {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (
        status,
        Json(json!({"id": id, "success": true, "errors": [], "created": created})),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&record::url(version, sobject.name, &id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

fn updated(
    sandbox: &Sandbox,
    sobject: &'static SObject,
    request: &Request,
) -> Result<Response, ApiError> {
    let pairs = body::query_pairs(request.uri.query());
    let bound = |name: &str| {
        body::query_value(&pairs, name)
            .and_then(stamp::parse)
            .ok_or_else(|| bad("INVALID_REPLICATION_DATE", format!("The '{name}' parameter must be a UTC date-time (2024-01-01T00:00:00+00:00)."), &[]))
    };
    let (start, end) = (bound("start")?, bound("end")?);
    if end < start {
        return Err(bad(
            "INVALID_REPLICATION_DATE",
            "end must be after start",
            &[],
        ));
    }
    let ids: Vec<String> = sandbox.with_core(|core| {
        core.salesforce
            .get(sobject.name)
            .map(|table| {
                table
                    .iter()
                    .filter(|(_, r)| {
                        r.get("SystemModstamp")
                            .and_then(Value::as_str)
                            .and_then(stamp::parse)
                            .is_some_and(|t| t >= start && t <= end)
                    })
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default()
    });
    Ok(Json(json!({"ids": ids, "latestDateCovered": stamp::salesforce(end)})).into_response())
}

/// Admin edits "as a user would": `GET|POST /_sandbox/salesforce/{Obj}`,
/// `GET|PATCH|DELETE /_sandbox/salesforce/{Obj}/{id}`.
pub(crate) fn admin(
    sandbox: &Sandbox,
    segments: &[String],
    request: &Request,
) -> Result<Response, ApiError> {
    let version = "v62.0";
    match segments {
        [name] if request.method == Method::GET => {
            let sobject = sobject(name)?;
            let records: Vec<Value> = sandbox.with_core(|core| {
                core.salesforce
                    .get(sobject.name)
                    .map(|t| {
                        t.values()
                            .map(|r| record::render(sobject, r, None, version))
                            .collect()
                    })
                    .unwrap_or_default()
            });
            Ok(Json(json!(records)).into_response())
        }
        [name] => dispatch(
            sandbox,
            version,
            62.0,
            &["sobjects".to_owned(), name.clone()],
            request,
        ),
        [name, id] => dispatch(
            sandbox,
            version,
            62.0,
            &["sobjects".to_owned(), name.clone(), id.clone()],
            request,
        ),
        _ => Err(record::not_found()),
    }
}
