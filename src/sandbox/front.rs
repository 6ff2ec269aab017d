//! The layer in front of every service router: injected faults, the body size limit
//! (413 in the service's format), panics turned into 500s, service-specific response
//! headers, a 404/405 fallback in the service's format, and the request log.

use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;

use super::error::{ApiError, Service};
use super::faults::{self, FaultKind};
use super::requests::{self, LogEntry, LoggedBody};
use super::state::Sandbox;

/// Largest request body kept whole (as JSON) in the request log.
const LOGGED_JSON_BYTES: usize = 128 * 1024;

/// Wraps a service router with the front layer.
pub(crate) fn wrap(router: Router, sandbox: Sandbox, service: Service) -> Router {
    router
        .fallback(move || async move {
            ApiError::generic(
                service,
                StatusCode::NOT_FOUND,
                "Resource not found for the segment.",
            )
        })
        .method_not_allowed_fallback(move || async move {
            ApiError::generic(
                service,
                StatusCode::METHOD_NOT_ALLOWED,
                "The HTTP method is not allowed for this resource.",
            )
        })
        .layer(CatchPanicLayer::custom(move |_| {
            ApiError::generic(
                service,
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error occurred.",
            )
            .into_response()
        }))
        .layer(middleware::from_fn_with_state((sandbox, service), front))
}

async fn front(
    State((sandbox, service)): State<(Sandbox, Service)>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let time = chrono::Utc::now().to_rfc3339();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let correlation = request
        .headers()
        .get("ms-correlationid")
        .or_else(|| request.headers().get("client-request-id"))
        .cloned();
    let fault = sandbox.with_core(|core| {
        // Rolled only when a rule exists: most runs have none.
        (!core.faults.list().is_empty())
            .then(|| {
                core.faults
                    .pick(service, method.as_str(), &path, faults::roll())
            })
            .flatten()
    });
    if let Some(FaultKind::Latency { ms }) = fault {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let (parts, body) = request.into_parts();
    let limit = sandbox.max_body_bytes();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let bytes = match declared {
        Some(length) if length > limit => None,
        _ => axum::body::to_bytes(body, limit).await.ok(),
    };
    let (mut response, body) = match bytes {
        None => (
            ApiError::generic(
                service,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The request body exceeds the limit of {limit} bytes."),
            )
            .into_response(),
            Bytes::new(),
        ),
        Some(bytes) => {
            let response = match &fault {
                Some(FaultKind::Status { code, retry_after }) => {
                    injected(service, *code, *retry_after)
                }
                Some(FaultKind::Throttle { retry_after }) => {
                    injected(service, 429, Some(*retry_after))
                }
                Some(FaultKind::Drop) => dropped(),
                _ => {
                    next.run(Request::from_parts(parts, Body::from(bytes.clone())))
                        .await
                }
            };
            (response, bytes)
        }
    };
    add_headers(service, &mut response, correlation);
    let status = if matches!(fault, Some(FaultKind::Drop)) {
        0
    } else {
        response.status().as_u16()
    };
    let (response, error) = error_summary(response).await;
    let write = status < 300
        && status != 0
        && matches!(
            method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        )
        && service != Service::Login
        && !path.ends_with("/oauth2/token");
    let entry = LogEntry {
        seq: 0,
        time,
        service,
        method: method.to_string(),
        path: path_and_query,
        status,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        fault: fault.as_ref().map(describe_fault),
        body: LoggedBody::new(&content_type, &body, LOGGED_JSON_BYTES),
        error,
        write,
    };
    sandbox.with_core(|core| {
        let capacity = core.settings.request_log_capacity;
        core.requests.push(entry, capacity);
    });
    response
}

fn describe_fault(kind: &FaultKind) -> String {
    match kind {
        FaultKind::Latency { ms } => format!("latency {ms}ms"),
        FaultKind::Status { code, .. } => format!("status {code}"),
        FaultKind::Drop => "drop".to_owned(),
        FaultKind::Throttle { retry_after } => format!("throttle (Retry-After {retry_after})"),
    }
}

/// An injected error answer in the service's format.
fn injected(service: Service, code: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let message = match (service, code) {
        (Service::Dataverse, 429) => {
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
        }
        (_, 429) => "Too many requests. Retry after the interval in the Retry-After header.",
        (_, 503) => "The service is temporarily unavailable.",
        (_, 504) => "The gateway timed out.",
        _ => "Injected fault.",
    };
    let mut error = ApiError::generic(service, status, message);
    if let Some(seconds) = retry_after {
        error = error.with_header(header::RETRY_AFTER, seconds.to_string());
    }
    error.into_response()
}

/// A response whose body fails immediately: hyper then closes the connection
/// without writing a status line.
fn dropped() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other(
            "connection dropped by a sandbox fault",
        ))
    });
    Response::new(Body::from_stream(stream))
}

fn add_headers(service: Service, response: &mut Response, correlation: Option<HeaderValue>) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    match service {
        Service::PartnerCenter | Service::PartnerCenterWebhooks => {
            set("request-id", &request_id);
            set("ms-requestid", &request_id);
            let correlation = correlation
                .and_then(|v| v.to_str().ok().map(str::to_owned))
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            set("ms-correlationid", &correlation);
            set("x-locale", "en-US");
        }
        Service::Dataverse => {
            set("odata-version", "4.0");
            set("req_id", &request_id);
            set("x-ms-service-request-id", &request_id);
        }
        Service::Login => {
            set("x-ms-request-id", &request_id);
            set("cache-control", "no-store, no-cache");
        }
        Service::Salesforce | Service::Admin => {}
    }
}

/// For failed answers, reads the (small) error body for the log and rebuilds the response.
async fn error_summary(response: Response) -> (Response, Option<serde_json::Value>) {
    if response.status().as_u16() < 400 {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => {
            let summary = requests::summarize("application/json", &bytes, 64 * 1024);
            (Response::from_parts(parts, Body::from(bytes)), summary)
        }
        Err(_) => (Response::from_parts(parts, Body::empty()), None),
    }
}
