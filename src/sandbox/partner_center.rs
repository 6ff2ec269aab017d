//! Partner Center referrals API v1.0 (`/v1.0/engagements/referrals`): list with OData
//! options and `@odata.nextLink` paging, get, create (200), replace (PUT with If-Match),
//! and JSON-Patch (204, or 200 with `Prefer: return=representation`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::auth;
use super::body::{self, BodyError, Prefer};
use super::delivery;
use super::error::{ApiError, Service};
use super::front;
use super::odata::{self, OrderKey};
use super::referral::{self, Actor, Written};
use super::referral_shape;
use super::state::{Core, Sandbox};

/// The referrals API router.
pub fn router(sandbox: Sandbox) -> Router {
    let routes = Router::new()
        .route("/v1.0/engagements/referrals", get(list).post(create))
        .route(
            "/v1.0/engagements/referrals/{id}",
            get(get_one).put(replace).patch(patch),
        )
        .layer(middleware::from_fn_with_state(
            (sandbox.clone(), Service::PartnerCenter),
            auth::require_token,
        ))
        .with_state(sandbox.clone());
    front::wrap(routes, sandbox, Service::PartnerCenter)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        Service::PartnerCenter,
        StatusCode::BAD_REQUEST,
        "invalidRequest",
        message,
    )
}

/// Maps a body problem to the Partner Center answer.
pub(crate) fn body_error(error: BodyError) -> ApiError {
    match error {
        BodyError::UnsupportedMediaType(media) => ApiError::new(
            Service::PartnerCenter,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalidRequest",
            format!("The content type '{media}' is not supported; use application/json."),
        ),
        BodyError::Malformed(detail) => {
            invalid(format!("The request body is not valid JSON: {detail}"))
        }
    }
}

/// Runs a referral write, then starts the webhook delivery it raises.
pub(crate) fn write(
    sandbox: &Sandbox,
    f: impl FnOnce(&mut Core) -> Result<Written, ApiError>,
) -> Result<Written, ApiError> {
    let urls = sandbox.urls().clone();
    let (written, job) = sandbox.with_core(|core| {
        let written = f(core)?;
        let job = written
            .event
            .and_then(|event| delivery::enqueue_referral(core, &urls, event, &written.referral));
        Ok::<_, ApiError>((written, job))
    })?;
    if let Some(job) = job {
        delivery::spawn(sandbox, job);
    }
    Ok(written)
}

fn with_etag(mut response: Response, referral: &Value) -> Response {
    if let Some(etag) = referral.get("eTag").and_then(Value::as_str)
        && let Ok(value) = HeaderValue::from_str(etag)
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// `GET …/referrals/{id}` (also served on the webhooks host at the `ResourceUri` path).
pub(crate) async fn get_one(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // Rendered under the lock: the stored referral is read in place, never copied.
    let urls = sandbox.urls();
    let (body, etag) = sandbox
        .with_core(|core| {
            let referral = core.referrals.get(&id)?;
            let etag = referral
                .get("eTag")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Some((referral::render_json(referral, urls, true), etag))
        })
        .ok_or_else(|| {
            ApiError::new(
                Service::PartnerCenter,
                StatusCode::NOT_FOUND,
                "itemNotFound",
                format!("Referral with id '{id}' was not found."),
            )
        })?;
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(value) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

async fn create(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let input = body::json(&headers, &bytes, &["application/json"]).map_err(body_error)?;
    let written = write(&sandbox, |core| referral::create(core, &input, Actor::Api))?;
    let body = referral::render(&written.referral, sandbox.urls(), true);
    Ok(with_etag(Json(body).into_response(), &written.referral))
}

async fn replace(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let input = body::json(&headers, &bytes, &["application/json"]).map_err(body_error)?;
    let if_match = body::header_text(&headers, "if-match").map(str::to_owned);
    let written = write(&sandbox, |core| {
        referral::replace(core, &id, &input, if_match.as_deref())
    })?;
    let body = referral::render(&written.referral, sandbox.urls(), true);
    Ok(with_etag(Json(body).into_response(), &written.referral))
}

async fn patch(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let operations = body::json(
        &headers,
        &bytes,
        &["application/json", "application/json-patch+json"],
    )
    .map_err(body_error)?;
    let if_match = body::header_text(&headers, "if-match").map(str::to_owned);
    let written = write(&sandbox, |core| {
        referral::patch(core, &id, &operations, if_match.as_deref(), Actor::Api)
    })?;
    let response = if Prefer::parse(&headers).representation {
        Json(referral::render(&written.referral, sandbox.urls(), true)).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    Ok(with_etag(response, &written.referral))
}

/// The OData options of a list request.
struct ListQuery {
    filter: Option<odata::Filter>,
    order: Vec<OrderKey>,
    top: Option<usize>,
    skip: usize,
    consumed: usize,
    select: Vec<String>,
}

const OPTIONS: &[&str] = &[
    "$filter",
    "$orderby",
    "$top",
    "$skip",
    "$select",
    "$count",
    "$expand",
    "$skiptoken",
];

fn parse_query(pairs: &[(String, String)]) -> Result<ListQuery, ApiError> {
    for (key, _) in pairs {
        if key.starts_with('$') && !OPTIONS.contains(&key.as_str()) {
            return Err(invalid(format!(
                "The query parameter '{key}' is not supported."
            )));
        }
    }
    let filter = match body::query_value(pairs, "$filter") {
        None => None,
        Some(text) => {
            let filter =
                odata::parse_filter(text).map_err(|e| invalid(format!("Invalid $filter: {e}")))?;
            for used in filter.paths() {
                if !referral_shape::filterable(&used.path, used.collection) {
                    return Err(invalid(format!(
                        "Invalid $filter: '{}' is not a filterable property of a referral.",
                        used.path.join("/")
                    )));
                }
            }
            Some(filter)
        }
    };
    let order = match body::query_value(pairs, "$orderby") {
        None => Vec::new(),
        Some(text) => {
            let keys = odata::parse_orderby(text)
                .map_err(|e| invalid(format!("Invalid $orderby: {e}")))?;
            for key in &keys {
                let field = key.path.join("/");
                if field != "createdDateTime" && field != "updatedDateTime" {
                    return Err(invalid(format!(
                        "Invalid $orderby: '{field}'; referrals can be ordered by createdDateTime or updatedDateTime."
                    )));
                }
            }
            keys
        }
    };
    let number = |name: &str| -> Result<Option<usize>, ApiError> {
        body::query_value(pairs, name)
            .map(|v| {
                v.trim().parse::<usize>().map_err(|_| {
                    invalid(format!(
                        "Invalid {name}: '{v}' is not a non-negative integer."
                    ))
                })
            })
            .transpose()
    };
    let consumed = match body::query_value(pairs, "$skiptoken") {
        None => 0,
        Some(token) => decode_token(token).ok_or_else(|| invalid("Invalid $skiptoken."))?,
    };
    let select = body::query_value(pairs, "$select")
        .map(odata::parse_select)
        .unwrap_or_default();
    for field in &select {
        if referral_shape::REFERRAL
            .field(field)
            .is_none_or(|(name, _)| name != field)
        {
            return Err(invalid(format!(
                "Invalid $select: '{field}' is not a property of a referral."
            )));
        }
    }
    Ok(ListQuery {
        filter,
        order,
        top: number("$top")?,
        skip: number("$skip")?.unwrap_or(0),
        consumed,
        select,
    })
}

fn encode_token(consumed: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("referrals:{consumed}"))
}

fn decode_token(token: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("referrals:")?
        .parse()
        .ok()
}

async fn list(State(sandbox): State<Sandbox>, uri: Uri) -> Result<Response, ApiError> {
    let pairs = body::query_pairs(uri.query());
    let query = parse_query(&pairs)?;
    let (mut referrals, page_size) = sandbox.with_core(|core| {
        (
            core.referrals.values().cloned().collect::<Vec<_>>(),
            core.settings.partner_center_page_size.max(1),
        )
    });
    if let Some(filter) = &query.filter {
        referrals.retain(|r| filter.matches(r, false));
    }
    let default_order = [OrderKey {
        path: vec!["createdDateTime".into()],
        descending: false,
    }];
    let order = if query.order.is_empty() {
        &default_order[..]
    } else {
        &query.order[..]
    };
    referrals.sort_by(|a, b| {
        odata::compare_records(a, b, order, false).then_with(|| {
            let id = |r: &Value| r.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
            id(a).cmp(&id(b))
        })
    });
    let total = referrals.len();
    let start = query.skip.saturating_add(query.consumed).min(total);
    let allowed = query
        .top
        .map_or(usize::MAX, |top| top.saturating_sub(query.consumed));
    let count = page_size.min(allowed).min(total - start);
    let urls = sandbox.urls().clone();
    let value: Vec<Value> = referrals[start..start + count]
        .iter()
        .map(|r| select(referral::render(r, &urls, false), &query.select))
        .collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/v1.0/engagements/$metadata#referrals",
            urls.partner_center
        )),
    );
    body.insert("@odata.count".into(), json!(total));
    body.insert("value".into(), Value::Array(value));
    let consumed = query.consumed.saturating_add(count);
    if start + count < total && consumed < query.top.unwrap_or(usize::MAX) {
        let mut next: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(k, _)| k != "$skiptoken")
            .collect();
        next.push(("$skiptoken".into(), encode_token(consumed)));
        body.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{}/v1.0/engagements/referrals?{}",
                urls.partner_center,
                body::encode_query(&next)
            )),
        );
    }
    Ok(Json(Value::Object(body)).into_response())
}

fn select(referral: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return referral;
    }
    match referral {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| fields.contains(k))
                .collect(),
        ),
        other => other,
    }
}
