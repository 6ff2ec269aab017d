//! Access tokens: the fixed sandbox credentials, issuing opaque tokens with an expiry,
//! and the `Authorization: Bearer` check every data call goes through.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::{ApiError, Service};
use super::state::{Core, Sandbox, ns};

/// The sandbox tenant (any tenant in the token URL is accepted; this one is documented).
pub const TENANT_ID: &str = "5a4d0000-c05e-4c0a-8d1e-5a4db0c05e01";
/// Client id of the sandbox's Entra app (Partner Center and Dataverse).
pub const CLIENT_ID: &str = "5a4d0001-c05e-4c0a-8d1e-5a4db0c05e01";
/// Client secret of the sandbox's Entra app.
pub const CLIENT_SECRET: &str = "sandbox-client-secret";
/// A refresh token that is always valid (the delegated Partner Center grant).
pub const REFRESH_TOKEN: &str = "sandbox-refresh-token";
/// User name for the password (ROPC) grant.
pub const USERNAME: &str = "referral.admin@sandbox.example";
/// Password for the password (ROPC) grant.
pub const PASSWORD: &str = "sandbox-password";
/// Consumer key of the sandbox's Salesforce connected app.
pub const SALESFORCE_CLIENT_ID: &str = "3MVG9sandbox.cosync.consumer.key";
/// Consumer secret of the sandbox's Salesforce connected app.
pub const SALESFORCE_CLIENT_SECRET: &str = "sandbox-salesforce-secret";

/// Who issued a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Issuer {
    /// The Microsoft identity platform.
    Microsoft,
    /// Salesforce.
    Salesforce,
}

/// An issued token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Token {
    pub(crate) issuer: Issuer,
    /// `scope` / `resource` it was issued for (Microsoft), empty for Salesforce.
    pub(crate) audience: String,
    pub(crate) expires_at: DateTime<Utc>,
    /// A refresh token rather than an access token.
    #[serde(default)]
    pub(crate) refresh: bool,
}

fn random_token(prefix: &str) -> String {
    format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// `now + seconds`, capped at 100 years (chrono panics on overflow).
fn expiry(now: DateTime<Utc>, seconds: u64) -> DateTime<Utc> {
    let capped = i64::try_from(seconds.min(100 * 365 * 24 * 3600)).unwrap_or(0);
    now.checked_add_signed(Duration::seconds(capped))
        .unwrap_or(now)
}

/// Issues an access token; returns it with its lifetime in seconds.
pub(crate) fn issue(core: &mut Core, issuer: Issuer, audience: &str) -> (String, u64) {
    let now = Utc::now();
    core.tokens.retain(|_, t| t.expires_at > now);
    let lifetime = core.settings.token_lifetime_secs;
    let token = random_token(match issuer {
        Issuer::Microsoft => "sbx.ms.",
        Issuer::Salesforce => "00Dsbx!",
    });
    let record = Token {
        issuer,
        audience: audience.to_owned(),
        expires_at: expiry(now, lifetime),
        refresh: false,
    };
    core.persist(ns::TOKEN, &token, &json!(record));
    core.tokens.insert(token.clone(), record);
    (token, lifetime)
}

/// Issues a refresh token (valid for 90 days).
pub(crate) fn issue_refresh(core: &mut Core, issuer: Issuer) -> String {
    let token = random_token("sbx.rt.");
    let record = Token {
        issuer,
        audience: String::new(),
        expires_at: Utc::now() + Duration::days(90),
        refresh: true,
    };
    core.persist(ns::TOKEN, &token, &json!(record));
    core.tokens.insert(token.clone(), record);
    token
}

/// True when `token` is a valid refresh token of that issuer.
pub(crate) fn valid_refresh(core: &Core, issuer: Issuer, token: &str) -> bool {
    token == REFRESH_TOKEN
        || core
            .tokens
            .get(token)
            .is_some_and(|t| t.refresh && t.issuer == issuer && t.expires_at > Utc::now())
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Missing,
    Unknown,
    Expired,
    WrongAudience,
}

fn check(sandbox: &Sandbox, service: Service, header: Option<&HeaderValue>) -> Result<(), Refusal> {
    let token = header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
                .or_else(|| h.strip_prefix("OAuth "))
        })
        .map(str::trim)
        .ok_or(Refusal::Missing)?;
    let urls = sandbox.urls();
    sandbox.with_core(|core| {
        let record = core.tokens.get(token).ok_or(Refusal::Unknown)?;
        let wanted = if service == Service::Salesforce {
            Issuer::Salesforce
        } else {
            Issuer::Microsoft
        };
        if record.refresh || record.issuer != wanted {
            return Err(Refusal::Unknown);
        }
        if record.expires_at <= Utc::now() {
            return Err(Refusal::Expired);
        }
        if core.settings.strict_audience && wanted == Issuer::Microsoft {
            let (real, local) = match service {
                Service::PartnerCenter => ("api.partner.microsoft.com", &urls.partner_center),
                Service::PartnerCenterWebhooks => (
                    "api.partnercenter.microsoft.com",
                    &urls.partner_center_webhooks,
                ),
                _ => ("dynamics.com", &urls.dataverse),
            };
            let local = local.trim_start_matches("http://");
            if !record.audience.contains(real) && !record.audience.contains(local) {
                return Err(Refusal::WrongAudience);
            }
        }
        Ok(())
    })
}

fn refusal_response(service: Service, refusal: Refusal) -> Response {
    let message = match refusal {
        Refusal::Missing => "Authorization header with a Bearer token is required.",
        Refusal::Unknown => "The access token is invalid.",
        Refusal::Expired => "The access token has expired.",
        Refusal::WrongAudience => "The access token was issued for another audience.",
    };
    let error = match service {
        Service::Salesforce => ApiError::new(
            service,
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ),
        Service::Dataverse => ApiError::new(service, StatusCode::UNAUTHORIZED, "", message)
            .with_header(
                header::WWW_AUTHENTICATE,
                "Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize",
            ),
        _ => ApiError::new(service, StatusCode::UNAUTHORIZED, "unauthenticated", message)
            .with_header(header::WWW_AUTHENTICATE, "Bearer"),
    };
    error.into_response()
}

/// Middleware: refuses requests without a valid bearer token for this service, and
/// counts Salesforce API usage against its allocation.
pub(crate) async fn require_token(
    State((sandbox, service)): State<(Sandbox, Service)>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = check(
        &sandbox,
        service,
        request.headers().get(header::AUTHORIZATION),
    ) {
        return refusal_response(service, refusal);
    }
    if service != Service::Salesforce {
        return next.run(request).await;
    }
    let usage = sandbox.with_core(|core| {
        let limit = core.settings.salesforce_api_limit;
        if core.salesforce_api_used >= limit {
            return Err((core.salesforce_api_used, limit));
        }
        core.salesforce_api_used += 1;
        let used = core.salesforce_api_used;
        core.persist(ns::META, "salesforce_api_used", &json!(used));
        Ok((used, limit))
    });
    let (mut response, (used, limit)) = match usage {
        Ok(usage) => (next.run(request).await, usage),
        Err(usage) => (
            ApiError::new(
                service,
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            )
            .into_response(),
            usage,
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&format!("api-usage={used}/{limit}")) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response
}
