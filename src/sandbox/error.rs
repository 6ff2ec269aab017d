//! Error answers in each emulated service's own wire format.
//!
//! Partner Center: `{"error":{"code","message","target","innerError"}}`; Dataverse:
//! `{"error":{"code":"0x8004…","message"}}`; Salesforce: `[{"message","errorCode","fields"}]`;
//! the identity endpoints: OAuth2 `{"error","error_description",…}`.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The emulated services, one listener each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// Partner Center referrals API v1.0 (`api.partner.microsoft.com`).
    PartnerCenter,
    /// Partner Center webhook registration API (`api.partnercenter.microsoft.com`).
    PartnerCenterWebhooks,
    /// Dataverse Web API (`<org>.crm.dynamics.com`).
    Dataverse,
    /// Salesforce REST API and its token endpoint (`<MyDomain>.my.salesforce.com`).
    Salesforce,
    /// Microsoft identity platform token endpoints (`login.microsoftonline.com`).
    Login,
    /// The sandbox's own admin API (`/_sandbox/`).
    Admin,
}

impl Service {
    /// The snake_case name used in URLs, fault rules and the request log.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::PartnerCenter => "partner_center",
            Service::PartnerCenterWebhooks => "partner_center_webhooks",
            Service::Dataverse => "dataverse",
            Service::Salesforce => "salesforce",
            Service::Login => "login",
            Service::Admin => "admin",
        }
    }
}

/// An error answer: status, service-specific code and message.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) service: Service,
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) fields: Vec<String>,
    pub(crate) inner: Option<Box<(String, String)>>,
    pub(crate) headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    /// An error with an explicit code.
    pub(crate) fn new(
        service: Service,
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            service,
            status,
            code: code.into(),
            message: message.into(),
            fields: Vec::new(),
            inner: None,
            headers: Vec::new(),
        }
    }

    /// An error with the service's usual code for the status.
    pub(crate) fn generic(
        service: Service,
        status: StatusCode,
        message: impl Into<String>,
    ) -> Self {
        ApiError::new(service, status, default_code(service, status), message)
    }

    /// Names the offending fields (Salesforce `fields`).
    pub(crate) fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }

    /// Adds a Partner Center `innerError`.
    pub(crate) fn with_inner(mut self, code: &str, message: &str) -> Self {
        self.inner = Some(Box::new((code.to_owned(), message.to_owned())));
        self
    }

    /// Adds a response header.
    pub(crate) fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The JSON body in the service's format.
    pub(crate) fn body(&self) -> Value {
        match self.service {
            Service::PartnerCenter | Service::PartnerCenterWebhooks => {
                let mut error = json!({
                    "code": self.code,
                    "message": truncate(&self.message, 1024),
                    "target": "referral",
                });
                if self.service == Service::PartnerCenterWebhooks {
                    error["target"] = json!("webhookRegistration");
                }
                if let Some(inner) = &self.inner {
                    let (code, message) = inner.as_ref();
                    error["innerError"] = json!({"code": code, "message": message});
                }
                json!({ "error": error })
            }
            Service::Dataverse => json!({"error": {"code": self.code, "message": self.message}}),
            Service::Salesforce => {
                let mut item = json!({"message": self.message, "errorCode": self.code});
                if !self.fields.is_empty() {
                    item["fields"] = json!(self.fields);
                }
                json!([item])
            }
            Service::Login => json!({
                "error": self.code,
                "error_description": self.message,
                "error_codes": [],
                "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string(),
                "trace_id": uuid::Uuid::new_v4().to_string(),
                "correlation_id": uuid::Uuid::new_v4().to_string(),
            }),
            Service::Admin => json!({"error": self.code, "message": self.message}),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().insert(name.clone(), value);
            }
        }
        response
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The code a service usually answers with for a status.
fn default_code(service: Service, status: StatusCode) -> &'static str {
    let code = status.as_u16();
    match service {
        Service::PartnerCenter | Service::PartnerCenterWebhooks => match code {
            401 => "unauthenticated",
            403 => "accessDenied",
            404 => "itemNotFound",
            412 => "preconditionFailed",
            429 | 503 | 504 => "serviceNotAvailable",
            400..=499 => "invalidRequest",
            _ => "generalException",
        },
        Service::Dataverse => match code {
            401 => "",
            404 => "0x80060888",
            412 => "0x80060882",
            429 => "0x80072322",
            400..=499 => "0x80060888",
            _ => "0x80040216",
        },
        Service::Salesforce => match code {
            401 => "INVALID_SESSION_ID",
            403 => "INSUFFICIENT_ACCESS",
            404 => "NOT_FOUND",
            405 => "METHOD_NOT_ALLOWED",
            413 => "REQUEST_SIZE_EXCEEDED",
            415 => "UNSUPPORTED_MEDIA_TYPE",
            429 => "REQUEST_LIMIT_EXCEEDED",
            503 => "SERVER_UNAVAILABLE",
            400..=499 => "BAD_REQUEST",
            _ => "UNKNOWN_EXCEPTION",
        },
        Service::Login => match code {
            401 => "invalid_client",
            400..=499 => "invalid_request",
            _ => "temporarily_unavailable",
        },
        Service::Admin => match code {
            404 => "not_found",
            400..=499 => "bad_request",
            _ => "internal_error",
        },
    }
}
