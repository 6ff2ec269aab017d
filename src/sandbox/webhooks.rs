//! Partner Center webhook registration API (`/webhooks/v1/registration`, its own host):
//! register (POST), update (PUT), view, delete, list event names, send a test event
//! (`validationEvents`) and read its result. The host also serves the referral at the
//! events' `ResourceUri` path (`/engagements/v1/referrals/{id}`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::auth;
use super::body::{self, BodyError};
use super::delivery;
use super::error::{ApiError, Service};
use super::front;
use super::partner_center;
use super::referral::PARTNER_ORGANIZATION_ID;
use super::stamp;
use super::state::{Sandbox, ns};

/// Event names the registration API lists and accepts.
pub const EVENTS: &[&str] = &[
    "test-created",
    "referral-created",
    "referral-updated",
    "related-referral-created",
    "related-referral-updated",
    "subscription-updated",
    "threshold-exceeded",
];

/// The webhook registration API router.
pub fn router(sandbox: Sandbox) -> Router {
    let routes = Router::new()
        .route("/webhooks/v1/registration/events", get(events))
        .route(
            "/webhooks/v1/registration",
            get(view).post(register).put(update).delete(remove),
        )
        .route(
            "/webhooks/v1/registration/validationEvents",
            post(send_test),
        )
        .route(
            "/webhooks/v1/registration/validationEvents/{correlation}",
            get(test_result),
        )
        .route(
            "/engagements/v1/referrals/{id}",
            get(partner_center::get_one),
        )
        .layer(middleware::from_fn_with_state(
            (sandbox.clone(), Service::PartnerCenterWebhooks),
            auth::require_token,
        ))
        .with_state(sandbox.clone());
    front::wrap(routes, sandbox, Service::PartnerCenterWebhooks)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(Service::PartnerCenterWebhooks, status, code, message)
}

fn not_registered() -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        "No webhook registration exists for this partner.",
    )
}

async fn events() -> Json<Value> {
    Json(json!(EVENTS))
}

fn public(registration: &Value) -> Value {
    json!({
        "SubscriberId": registration["SubscriberId"],
        "WebhookUrl": registration["WebhookUrl"],
        "WebhookEvents": registration["WebhookEvents"],
    })
}

/// Reads a registration body (keys bound case-insensitively).
fn parse_registration(
    headers: &HeaderMap,
    bytes: &Bytes,
) -> Result<(String, Vec<String>, bool), ApiError> {
    let input = body::json(headers, bytes, &["application/json"]).map_err(|e| match e {
        BodyError::UnsupportedMediaType(media) => error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalidRequest",
            format!("The content type '{media}' is not supported; use application/json."),
        ),
        BodyError::Malformed(detail) => error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            format!("The request body is not valid JSON: {detail}"),
        ),
    })?;
    let Value::Object(map) = input else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "The body must be a registration object.",
        ));
    };
    let mut url = None;
    let mut events = None;
    let mut ms_header = false;
    for (key, value) in &map {
        match key.to_ascii_lowercase().as_str() {
            "webhookurl" => url = value.as_str().map(str::to_owned),
            "webhookevents" => events = value.as_array().cloned(),
            "signaturetokentomssignatureheader" => ms_header = value.as_bool().unwrap_or(false),
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "invalidRequest",
                    format!("Unknown property '{key}'."),
                ));
            }
        }
    }
    let url = url.ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "WebhookUrl is required.",
        )
    })?;
    let valid_url = url::Url::parse(&url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !valid_url {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            format!("WebhookUrl '{url}' is not an absolute http(s) URL."),
        ));
    }
    let events = events.filter(|e| !e.is_empty()).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "WebhookEvents must list at least one event.",
        )
    })?;
    let mut names = Vec::new();
    for event in events {
        let name = event.as_str().unwrap_or("");
        match EVENTS.iter().find(|e| e.eq_ignore_ascii_case(name)) {
            Some(known) => names.push((*known).to_owned()),
            None => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "invalidRequest",
                    format!(
                        "'{name}' is not a webhook event; GET /webhooks/v1/registration/events lists them."
                    ),
                ));
            }
        }
    }
    Ok((url, names, ms_header))
}

fn store(
    sandbox: &Sandbox,
    url: String,
    events: Vec<String>,
    ms_header: bool,
    must_be_new: bool,
) -> Result<Value, ApiError> {
    sandbox.with_core(|core| {
        if must_be_new && core.registration.is_some() {
            return Err(error(
                StatusCode::CONFLICT,
                "invalidRequest",
                "A webhook registration already exists; update it with PUT /webhooks/v1/registration.",
            ));
        }
        let subscriber = core
            .registration
            .as_ref()
            .and_then(|r| r["SubscriberId"].as_str().map(str::to_owned))
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let registration = json!({
            "SubscriberId": subscriber,
            "WebhookUrl": url,
            "WebhookEvents": events,
            "SignatureTokenToMsSignatureHeader": ms_header,
        });
        core.persist(ns::REGISTRATION, "current", &registration);
        core.registration = Some(registration.clone());
        Ok(public(&registration))
    })
}

async fn register(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (url, events, ms_header) = parse_registration(&headers, &bytes)?;
    store(&sandbox, url, events, ms_header, true).map(Json)
}

async fn update(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (url, events, ms_header) = parse_registration(&headers, &bytes)?;
    store(&sandbox, url, events, ms_header, false).map(Json)
}

async fn view(State(sandbox): State<Sandbox>) -> Result<Json<Value>, ApiError> {
    sandbox
        .with_core(|core| core.registration.as_ref().map(public))
        .map(Json)
        .ok_or_else(not_registered)
}

async fn remove(State(sandbox): State<Sandbox>) -> Result<Response, ApiError> {
    let removed = sandbox.with_core(|core| {
        core.unpersist(ns::REGISTRATION, "current");
        core.registration.take().is_some()
    });
    if removed {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_registered())
    }
}

async fn send_test(State(sandbox): State<Sandbox>) -> Result<Json<Value>, ApiError> {
    let correlation = uuid::Uuid::new_v4().to_string();
    let uri = format!(
        "{}/webhooks/v1/registration/validationEvents/{correlation}",
        sandbox.urls().partner_center_webhooks
    );
    let job = sandbox.with_core(|core| {
        let registration = core.registration.clone().ok_or_else(not_registered)?;
        let subscribed = registration["WebhookEvents"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e == "test-created"));
        if !subscribed {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalidRequest",
                "The registration must include the test-created event to send a test event.",
            ));
        }
        let record = json!({
            "correlationId": correlation,
            "partnerId": PARTNER_ORGANIZATION_ID,
            "status": "pending",
            "callbackUrl": registration["WebhookUrl"],
            "results": [],
        });
        core.persist(ns::VALIDATION, &correlation, &record);
        core.validation_events.insert(correlation.clone(), record);
        let now = stamp::webhook(chrono::Utc::now());
        Ok(delivery::enqueue(
            core,
            "test-created",
            &uri,
            "test",
            &now,
            Some(correlation.clone()),
        ))
    })?;
    if let Some(job) = job {
        delivery::spawn(&sandbox, job);
    }
    let mut body = Map::new();
    body.insert("correlationId".into(), json!(correlation));
    Ok(Json(Value::Object(body)))
}

async fn test_result(
    State(sandbox): State<Sandbox>,
    Path(correlation): Path<String>,
) -> Result<Json<Value>, ApiError> {
    sandbox
        .with_core(|core| core.validation_events.get(&correlation).cloned())
        .map(Json)
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "itemNotFound",
                format!("No test event with correlation id '{correlation}'."),
            )
        })
}
