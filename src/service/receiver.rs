//! The HTTP side of `cosync serve`: `POST /webhooks/partner-center` (signature,
//! body checks, durable enqueue before the 2xx), `GET /healthz`, `GET /readyz`
//! and `GET /metrics`.
//!
//! Answers: 202 with the stored event ids; 200 for a redelivery or an event no
//! flow listens to; 400 malformed body or a `ResourceUri` outside the Partner
//! Center host; 401 bad or missing signature; 413 too large; 415 not JSON;
//! 503 when the store cannot take the event (Partner Center retries).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Shared, blocking, dispatch};
use crate::runtime::trigger::resource_id;
use crate::server::verify::SignatureHeaders;
use crate::store::{Enqueued, NewEvent};

/// The service's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_body_bytes;
    Router::new()
        .route("/webhooks/partner-center", post(partner_center))
        .route("/webhooks/dataverse", post(super::push::dataverse))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

pub(crate) fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    let reason = reason.into();
    tracing::warn!(status = status.as_u16(), %reason, "webhook refused");
    (status, axum::Json(json!({"error": reason}))).into_response()
}

/// A webhook payload, checked: its event name and referral id.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// `EventName`.
    pub event: String,
    /// The referral id (last segment of `ResourceUri`).
    pub referral_id: String,
    /// `ResourceChangeUtcDate`, when present.
    pub changed_at: Option<String>,
}

/// Checks a webhook body: JSON object, `EventName`, `ResourceUri` on an allowed
/// host naming a referral.
pub fn check_payload(body: &[u8], hosts: &[String]) -> Result<(Checked, Value), String> {
    let payload: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_string);
    let event = text("EventName").ok_or("`EventName` is missing or not a string")?;
    let uri = text("ResourceUri").ok_or("`ResourceUri` is missing or not a string")?;
    let parsed = url::Url::parse(&uri).map_err(|e| format!("`ResourceUri` is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let with_port = parsed.port().map(|p| format!("{host}:{p}"));
    let allowed = hosts.iter().any(|h| {
        h.eq_ignore_ascii_case(host)
            || with_port
                .as_deref()
                .is_some_and(|hp| h.eq_ignore_ascii_case(hp))
    });
    if !allowed {
        return Err(format!(
            "`ResourceUri` host `{}` is not the configured Partner Center host",
            with_port.as_deref().unwrap_or(host)
        ));
    }
    let referral_id =
        resource_id(&uri).ok_or_else(|| format!("`ResourceUri` `{uri}` names no referral"))?;
    Ok((
        Checked {
            event,
            referral_id,
            changed_at: text("ResourceChangeUtcDate"),
        },
        payload,
    ))
}

async fn partner_center(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.metrics.received();
    if let Some(refused) = not_json(&shared, &headers) {
        return refused;
    }
    let signature = SignatureHeaders::from_headers(&headers);
    if let Err(e) = shared.config.verifier.verify(&signature, &body).await {
        shared.metrics.refused();
        return refuse(StatusCode::UNAUTHORIZED, format!("signature: {e}"));
    }
    let (checked, payload) = match check_payload(&body, &shared.config.resource_hosts) {
        Ok(c) => c,
        Err(reason) => {
            shared.metrics.refused();
            return refuse(StatusCode::BAD_REQUEST, reason);
        }
    };
    let flows = dispatch::partner_center_flows(&shared.config.project, &checked.event);
    if flows.is_empty() {
        tracing::info!(event = %checked.event, referral = %checked.referral_id, "no flow listens to this event");
        return (
            StatusCode::OK,
            axum::Json(json!({"stored": [], "reason": format!("no enabled flow listens to `{}`", checked.event)})),
        )
            .into_response();
    }
    // Partner Center redelivers the same body; the change time tells versions apart.
    // It comes first in the key, so that the key index grows at its end (in time
    // order) instead of taking a page at a random place per event.
    let version = checked.changed_at.clone().unwrap_or_else(|| digest(&body));
    let events: Vec<NewEvent> = flows
        .iter()
        .map(|flow| NewEvent {
            source: "partner_center".into(),
            record_key: format!("referral:{}", checked.referral_id),
            dedupe_key: format!(
                "partner_center:{version}:{}:{}:{flow}",
                checked.event, checked.referral_id
            ),
            flow: Some((*flow).to_string()),
            payload: payload.clone(),
        })
        .collect();
    let stored = blocking(&shared.config.store, move |s| {
        events
            .iter()
            .map(|e| s.enqueue(e))
            .collect::<Result<Vec<_>, _>>()
    })
    .await;
    match stored {
        Ok(results) => {
            let ids: Vec<i64> = results
                .iter()
                .filter_map(|r| match r {
                    Enqueued::New(id) => Some(*id),
                    Enqueued::Duplicate => None,
                })
                .collect();
            shared.metrics.stored(ids.len());
            tracing::info!(event = %checked.event, referral = %checked.referral_id, stored = ?ids, "webhook accepted");
            if ids.is_empty() {
                return (
                    StatusCode::OK,
                    axum::Json(json!({"stored": [], "duplicate": true})),
                )
                    .into_response();
            }
            shared.wake_workers(ids.len());
            (StatusCode::ACCEPTED, axum::Json(json!({"stored": ids}))).into_response()
        }
        Err(e) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the event could not be stored: {e}"),
        ),
    }
}

/// 415 (counted as refused) when the body is declared as something else than
/// JSON; a missing `Content-Type` is taken as JSON.
pub(crate) fn not_json(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase());
    if declared
        .as_deref()
        .is_some_and(|t| !t.starts_with("application/json"))
    {
        shared.metrics.refused();
        return Some(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json",
        ));
    }
    None
}

/// A short stable digest of a body (when it carries no change time).
pub(crate) fn digest(body: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    d.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match blocking(&shared.config.store, |s| s.counts()).await {
        Ok(counts) => {
            let counts: serde_json::Map<String, Value> = counts
                .into_iter()
                .map(|(state, n)| {
                    (
                        serde_json::to_value(state)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        json!(n),
                    )
                })
                .collect();
            axum::Json(json!({"status": "ready", "events": counts})).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not ready", "error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["api.partnercenter.microsoft.com".into()]
    }

    #[test]
    fn payloads_are_checked() {
        let ok = br#"{"EventName":"referral-created","ResourceUri":"https://api.partnercenter.microsoft.com/engagements/v1/referrals/r-1","ResourceChangeUtcDate":"2024-01-01T00:00:00Z"}"#;
        let (c, _) = check_payload(ok, &hosts()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.referral_id, "r-1");
        let foreign = br#"{"EventName":"referral-created","ResourceUri":"https://evil.example/engagements/v1/referrals/r-1"}"#;
        assert!(
            check_payload(foreign, &hosts())
                .err()
                .is_some_and(|e| e.contains("evil.example"))
        );
        assert!(check_payload(b"{", &hosts()).is_err());
        assert!(check_payload(br#"{"EventName": 5}"#, &hosts()).is_err());
        assert!(check_payload(br#"[]"#, &hosts()).is_err());
    }
}
