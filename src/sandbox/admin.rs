//! The admin API under `/_sandbox/` (admin listener, no authentication): reset, seed,
//! the request log and writes, webhook deliveries, fault rules, settings, token
//! expiry, the signing certificate (and signatures of arbitrary bodies, to test
//! receivers with signed payloads Partner Center would never send), and edits "as a
//! user would" that raise webhooks, change tracking and modstamps exactly like real
//! edits.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_http::catch_panic::CatchPanicLayer;

use super::dataverse;
use super::error::{ApiError, Service};
use super::faults::FaultRule;
use super::partner_center;
use super::referral::{self, Actor};
use super::requests::LogFilter;
use super::salesforce;
use super::seed::{self, Seed};
use super::state::{Sandbox, Settings};

/// Largest admin request body (seed documents can be big).
const ADMIN_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The admin router.
pub fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/_sandbox", get(info))
        .route("/_sandbox/", get(info))
        .route("/_sandbox/certificate.cer", get(certificate_der))
        .route("/_sandbox/certificate.pem", get(certificate_pem))
        .route("/_sandbox/sign", post(sign))
        .route("/_sandbox/reset", post(reset))
        .route("/_sandbox/seed", post(seed_records))
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/writes", get(writes))
        .route(
            "/_sandbox/deliveries",
            get(deliveries).delete(clear_deliveries),
        )
        .route(
            "/_sandbox/faults",
            get(faults).post(add_faults).delete(clear_faults),
        )
        .route("/_sandbox/faults/{id}", delete(remove_fault))
        .route("/_sandbox/settings", get(settings).patch(change_settings))
        .route("/_sandbox/usage", get(usage).delete(reset_usage))
        .route("/_sandbox/tokens/expire", post(expire_tokens))
        .route(
            "/_sandbox/partner_center/referrals",
            get(list_referrals).post(create_referral),
        )
        .route(
            "/_sandbox/partner_center/referrals/{id}",
            get(get_referral).patch(patch_referral),
        )
        .route("/_sandbox/dataverse/{*rest}", any(dataverse_edit))
        .route("/_sandbox/salesforce/{*rest}", any(salesforce_edit))
        .fallback(|| async {
            admin_error(
                StatusCode::NOT_FOUND,
                "not_found",
                "No such admin endpoint; GET /_sandbox lists the services.",
            )
        })
        .layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
        .layer(CatchPanicLayer::custom(|_| {
            admin_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "The admin request failed unexpectedly.",
            )
            .into_response()
        }))
        .with_state(sandbox)
}

fn admin_error(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(Service::Admin, status, code, message)
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        admin_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid JSON body: {e}"),
        )
    })
}

async fn info(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(sandbox.describe())
}

async fn certificate_der(State(sandbox): State<Sandbox>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/pkix-cert")],
        sandbox.inner.signer.der().to_vec(),
    )
        .into_response()
}

async fn certificate_pem(State(sandbox): State<Sandbox>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        sandbox.inner.signer.pem().to_owned(),
    )
        .into_response()
}

/// Signs the raw request body as webhook deliveries are signed; answers the
/// headers a delivery of exactly that body carries.
async fn sign(State(sandbox): State<Sandbox>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let signature = sandbox
        .inner
        .signer
        .sign(&bytes)
        .map_err(|e| admin_error(StatusCode::INTERNAL_SERVER_ERROR, "sign_failed", e))?;
    Ok(Json(json!({"headers": {
        "content-type": "application/json; charset=utf-8",
        "authorization": format!("Signature {signature}"),
        "x-ms-certificate-url": sandbox.certificate_url(),
        "x-ms-signature-algorithm": "rsa-sha256",
    }})))
}

/// Empties every service and re-applies the base data and the `--seed` documents.
pub(crate) fn reset_state(sandbox: &Sandbox) -> Result<(), String> {
    let seeds = sandbox.inner.seeds.clone();
    sandbox.with_core(|core| {
        core.clear_data();
        dataverse::seed_currencies(core);
        for seed in &seeds {
            seed::apply(core, seed)?;
        }
        Ok(())
    })
}

async fn reset(State(sandbox): State<Sandbox>) -> Result<StatusCode, ApiError> {
    reset_state(&sandbox)
        .map_err(|e| admin_error(StatusCode::INTERNAL_SERVER_ERROR, "seed_failed", e))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn seed_records(
    State(sandbox): State<Sandbox>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let seed: Seed = parse(&bytes)?;
    let applied = sandbox
        .with_core(|core| seed::apply(core, &seed))
        .map_err(|e| admin_error(StatusCode::BAD_REQUEST, "bad_seed", e))?;
    Ok(Json(json!(applied)))
}

async fn requests(State(sandbox): State<Sandbox>, Query(filter): Query<LogFilter>) -> Json<Value> {
    Json(json!(
        sandbox.with_core(|core| core.requests.select(&filter, false))
    ))
}

async fn writes(State(sandbox): State<Sandbox>, Query(filter): Query<LogFilter>) -> Json<Value> {
    Json(json!(
        sandbox.with_core(|core| core.requests.select(&filter, true))
    ))
}

async fn clear_requests(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.with_core(|core| core.requests.clear());
    StatusCode::NO_CONTENT
}

async fn deliveries(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(json!(sandbox.with_core(|core| {
        core.deliveries.iter().cloned().collect::<Vec<_>>()
    })))
}

async fn clear_deliveries(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.with_core(|core| core.deliveries.clear());
    StatusCode::NO_CONTENT
}

async fn faults(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(json!(sandbox.with_core(|core| core.faults.list().to_vec())))
}

/// Adds one rule (an object) or several (an array); answers with the stored rules.
async fn add_faults(State(sandbox): State<Sandbox>, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let value: Value = parse(&bytes)?;
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut rules = Vec::new();
    for item in items {
        let rule = FaultRule::from_json(item)
            .map_err(|e| admin_error(StatusCode::BAD_REQUEST, "bad_fault", e))?;
        rules.push(rule);
    }
    let added: Vec<FaultRule> =
        sandbox.with_core(|core| rules.into_iter().map(|r| core.faults.add(r)).collect());
    Ok(Json(json!(added)))
}

async fn clear_faults(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.with_core(|core| core.faults.clear());
    StatusCode::NO_CONTENT
}

async fn remove_fault(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if sandbox.with_core(|core| core.faults.remove(&id)) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(admin_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no fault rule '{id}'"),
        ))
    }
}

async fn settings(State(sandbox): State<Sandbox>) -> Json<Settings> {
    Json(sandbox.settings())
}

/// Merges a partial settings object into the current settings.
async fn change_settings(
    State(sandbox): State<Sandbox>,
    bytes: Bytes,
) -> Result<Json<Settings>, ApiError> {
    let patch: Value = parse(&bytes)?;
    let mut current = serde_json::to_value(sandbox.settings()).unwrap_or(Value::Null);
    merge(&mut current, patch);
    let settings: Settings = serde_json::from_value(current)
        .map_err(|e| admin_error(StatusCode::BAD_REQUEST, "bad_settings", e.to_string()))?;
    sandbox.with_core(|core| core.settings = settings.clone());
    Ok(Json(settings))
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}

async fn usage(State(sandbox): State<Sandbox>) -> Json<Value> {
    let (used, limit) =
        sandbox.with_core(|core| (core.salesforce_api_used, core.settings.salesforce_api_limit));
    Json(json!({"salesforce": {"used": used, "limit": limit}}))
}

async fn reset_usage(State(sandbox): State<Sandbox>) -> StatusCode {
    sandbox.with_core(|core| core.salesforce_api_used = 0);
    StatusCode::NO_CONTENT
}

/// Expires every issued access token now (refresh tokens stay valid).
async fn expire_tokens(State(sandbox): State<Sandbox>) -> Json<Value> {
    let expired = sandbox.with_core(|core| {
        let now = chrono::Utc::now() - chrono::Duration::seconds(1);
        let mut count = 0;
        for token in core.tokens.values_mut().filter(|t| !t.refresh) {
            token.expires_at = now;
            count += 1;
        }
        count
    });
    Json(json!({"expired": expired}))
}

async fn list_referrals(State(sandbox): State<Sandbox>) -> Json<Value> {
    let urls = sandbox.urls().clone();
    let referrals: Vec<Value> = sandbox.with_core(|core| {
        core.referrals
            .values()
            .map(|r| referral::render(r, &urls, false))
            .collect()
    });
    Json(json!(referrals))
}

async fn get_referral(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    partner_center::get_one(State(sandbox), Path(id)).await
}

/// Creates a referral as Microsoft or a person would (incoming, New/Pending by default).
async fn create_referral(
    State(sandbox): State<Sandbox>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: Value = parse(&bytes)?;
    let written =
        partner_center::write(&sandbox, |core| referral::create(core, &input, Actor::User))?;
    Ok(Json(referral::render(
        &written.referral,
        sandbox.urls(),
        true,
    )))
}

/// Flattens a partial referral into JSON-Patch `replace` operations (objects merge,
/// everything else is replaced).
fn to_operations(prefix: &str, value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, inner) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                to_operations(&format!("{prefix}/{escaped}"), inner, out);
            }
        }
        other => out.push(json!({"op": "replace", "path": prefix, "value": other})),
    }
}

/// Updates a referral as a person would: a JSON-Patch array or a partial referral.
async fn patch_referral(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: Value = parse(&bytes)?;
    let operations = match input {
        Value::Array(_) => input,
        Value::Object(_) => {
            let mut out = Vec::new();
            to_operations("", &input, &mut out);
            Value::Array(out)
        }
        _ => {
            return Err(admin_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "send a JSON-Patch array or a partial referral object",
            ));
        }
    };
    let written = partner_center::write(&sandbox, |core| {
        referral::patch(core, &id, &operations, None, Actor::User)
    })?;
    Ok(Json(referral::render(
        &written.referral,
        sandbox.urls(),
        true,
    )))
}

async fn dataverse_edit(
    State(sandbox): State<Sandbox>,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = dataverse::Request {
        method,
        uri,
        headers: json_headers(headers),
        body,
        actor: Actor::User,
    };
    dataverse::dispatch(&sandbox, &rest, request).await
}

async fn salesforce_edit(
    State(sandbox): State<Sandbox>,
    Path(rest): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = salesforce::Request {
        method,
        uri,
        headers: json_headers(headers),
        body,
        actor: Actor::User,
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    salesforce::admin(&sandbox, &segments, &request)
}

/// Admin edits may omit the content type; they are JSON.
fn json_headers(mut headers: HeaderMap) -> HeaderMap {
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_referrals_flatten_to_replace_operations() {
        let mut out = Vec::new();
        to_operations(
            "",
            &json!({"details": {"dealValue": 5, "notes": "x"}, "status": "Active"}),
            &mut out,
        );
        let paths: Vec<&str> = out.iter().filter_map(|o| o["path"].as_str()).collect();
        assert_eq!(paths, ["/details/dealValue", "/details/notes", "/status"]);
    }
}
