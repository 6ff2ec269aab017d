//! Dataverse Web API (`/api/data/v9.2/`): opportunities, accounts, contacts,
//! transactioncurrencies and opportunitycloses with the OData behaviours of the real
//! service: create 204 + `OData-EntityId` (201 with `return=representation`), PATCH
//! update and upsert (`If-Match: *`, `If-None-Match: *`), weak eTags `W/"n"` and 412,
//! `@odata.bind` lookups read back as `_name_value`, `$select`/`$filter`/`$orderby`/`$top`,
//! `Prefer: odata.maxpagesize` paging, change tracking delta links with tombstones,
//! `WinOpportunity`/`LoseOpportunity`, `WhoAmI` and `EntityDefinitions` metadata.

mod actions;
mod metadata;
mod read;
pub(crate) mod schema;
mod table;
mod write;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware;
use axum::response::Response;
use axum::routing::any;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::auth;
use super::body::BodyError;
use super::error::{ApiError, Service};
use super::front;
use super::state::{Actor, Sandbox};

pub(crate) use table::Table;
pub(crate) use write::{apply_seed, seed_currencies};

/// A stored row: attributes by logical name (lookups as `{"id","entity"}`) and the row
/// version behind its weak eTag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Row {
    pub(crate) version: u64,
    pub(crate) attributes: Map<String, Value>,
}

/// A deleted row, for change tracking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tombstone {
    pub(crate) entity: String,
    pub(crate) id: String,
    pub(crate) version: u64,
}

/// The application user the API acts as.
pub const API_USER_ID: &str = "5a4d0003-c05e-4c0a-8d1e-5a4db0c05e01";
/// The person whose edits the admin API makes.
pub const SANDBOX_USER_ID: &str = "5a4d0004-c05e-4c0a-8d1e-5a4db0c05e01";
/// The organization id `WhoAmI` reports.
pub const ORGANIZATION_ID: &str = "5a4d0005-c05e-4c0a-8d1e-5a4db0c05e01";
/// The business unit id `WhoAmI` reports.
pub const BUSINESS_UNIT_ID: &str = "5a4d0006-c05e-4c0a-8d1e-5a4db0c05e01";

/// The Dataverse Web API router.
pub fn router(sandbox: Sandbox) -> Router {
    let routes = Router::new()
        .route("/api/data/{version}/{*rest}", any(api))
        .layer(middleware::from_fn_with_state(
            (sandbox.clone(), Service::Dataverse),
            auth::require_token,
        ))
        .with_state(sandbox.clone());
    front::wrap(routes, sandbox, Service::Dataverse)
}

/// An error in Dataverse's format.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(Service::Dataverse, status, code, message)
}

/// 400 with the generic OData code.
pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
    error(StatusCode::BAD_REQUEST, "0x80060888", message)
}

/// 404 for a missing row.
pub(crate) fn row_not_found(logical: &str, id: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "0x80040217",
        format!("{logical} With Id = {id} Does Not Exist"),
    )
}

/// Maps a body problem to the Dataverse answer.
pub(crate) fn body_error(error_kind: BodyError) -> ApiError {
    match error_kind {
        BodyError::UnsupportedMediaType(media) => error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "0x80060888",
            format!(
                "A supported MIME type could not be found that matches the content type of the request ('{media}'). The supported type is 'application/json'."
            ),
        ),
        BodyError::Malformed(detail) => {
            bad_request(format!("Error parsing the request body as JSON: {detail}"))
        }
    }
}

/// What a request addresses.
#[derive(Debug)]
enum Target {
    Collection(&'static schema::Entity),
    Row(&'static schema::Entity, String),
    Action(&'static str),
    WhoAmI,
    Definitions(Vec<String>),
}

fn parse_target(rest: &str, actor: Actor) -> Result<Target, ApiError> {
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            "0x80060888",
            format!(
                "Resource not found for the segment '{}'.",
                rest.split('/').next().unwrap_or(rest)
            ),
        )
    };
    let rest = rest.trim_end_matches('/');
    if rest.starts_with("EntityDefinitions") {
        return Ok(Target::Definitions(
            rest.split('/').map(str::to_owned).collect(),
        ));
    }
    match rest {
        "WhoAmI" | "WhoAmI()" => return Ok(Target::WhoAmI),
        "WinOpportunity" => return Ok(Target::Action("WinOpportunity")),
        "LoseOpportunity" => return Ok(Target::Action("LoseOpportunity")),
        _ => {}
    }
    if let Some((set, key)) = rest.split_once('(') {
        let entity = schema::by_set(set).ok_or_else(not_found)?;
        let key = key.strip_suffix(')').ok_or_else(not_found)?;
        let id = parse_guid(key).ok_or_else(|| {
            bad_request(format!(
                "Bad Request - Error in query syntax: '{key}' is not a valid key for {set}."
            ))
        })?;
        return Ok(Target::Row(entity, id));
    }
    if actor == Actor::User
        && let Some((set, key)) = rest.split_once('/')
    {
        let entity = schema::by_set(set).ok_or_else(not_found)?;
        let id = parse_guid(key).ok_or_else(not_found)?;
        return Ok(Target::Row(entity, id));
    }
    schema::by_set(rest)
        .map(Target::Collection)
        .ok_or_else(not_found)
}

/// A GUID in canonical lowercase form.
pub(crate) fn parse_guid(text: &str) -> Option<String> {
    let text = text.trim().trim_matches(|c| c == '{' || c == '}');
    uuid::Uuid::parse_str(text)
        .ok()
        .filter(|_| text.len() == 36)
        .map(|u| u.to_string())
}

async fn api(
    State(sandbox): State<Sandbox>,
    Path((version, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !matches!(version.as_str(), "v9.0" | "v9.1" | "v9.2") {
        return Err(error(
            StatusCode::NOT_FOUND,
            "0x80060888",
            format!("Unsupported API version '{version}'."),
        ));
    }
    let request = Request {
        method,
        uri,
        headers,
        body,
        actor: Actor::Api,
    };
    dispatch(&sandbox, &rest, request).await
}

/// A request to the Web API, from a client or from the admin API.
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) actor: Actor,
}

/// Routes a request by its path below `/api/data/v9.2/`.
pub(crate) async fn dispatch(
    sandbox: &Sandbox,
    rest: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let target = parse_target(rest, request.actor)?;
    let method_not_allowed = || {
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            "0x80060888",
            format!(
                "The HTTP method '{}' is not allowed on this resource.",
                request.method
            ),
        )
    };
    match (target, request.method.clone()) {
        (Target::Collection(entity), Method::GET) => read::query(sandbox, entity, &request),
        (Target::Collection(entity), Method::POST) => write::create(sandbox, entity, &request),
        (Target::Row(entity, id), Method::GET) => read::get(sandbox, entity, &id, &request),
        (Target::Row(entity, id), Method::PATCH) => write::patch(sandbox, entity, &id, &request),
        (Target::Row(entity, id), Method::DELETE) => write::delete(sandbox, entity, &id, &request),
        (Target::Action(action), Method::POST) => actions::close(sandbox, action, &request),
        (Target::WhoAmI, Method::GET) => Ok(actions::who_am_i(sandbox)),
        (Target::Definitions(segments), Method::GET) => {
            metadata::definitions(sandbox, &segments, &request)
        }
        _ => Err(method_not_allowed()),
    }
}
