//! Token endpoints: the Microsoft identity platform (`/{tenant}/oauth2/v2.0/token` and
//! the v1 `/{tenant}/oauth2/token` with `resource`) on the `login` listener, and
//! Salesforce's `/services/oauth2/token` on the Salesforce listener.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use chrono::Utc;
use serde_json::{Value, json};

use super::auth::{self, Issuer};
use super::error::{ApiError, Service};
use super::front;
use super::salesforce::ids;
use super::state::Sandbox;

/// The Microsoft identity platform (`login.microsoftonline.com`).
pub fn router(sandbox: Sandbox) -> Router {
    let routes = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2))
        .route("/{tenant}/oauth2/token", post(token_v1))
        .with_state(sandbox.clone());
    front::wrap(routes, sandbox, Service::Login)
}

fn form(headers: &HeaderMap, body: &Bytes) -> Result<HashMap<String, String>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
        ));
    }
    Ok(url::form_urlencoded::parse(body).into_owned().collect())
}

fn aad(status: StatusCode, code: &str, message: &str) -> ApiError {
    ApiError::new(Service::Login, status, code, message)
}

fn require<'a>(form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            aad(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!(
                    "AADSTS900144: The request body must contain the following parameter: '{name}'."
                ),
            )
        })
}

/// Checks client id and secret; the secret is optional for public-client refresh grants.
fn check_client(form: &HashMap<String, String>, secret_required: bool) -> Result<(), ApiError> {
    let client_id = require(form, "client_id")?;
    if client_id != auth::CLIENT_ID {
        return Err(aad(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!(
                "AADSTS700016: Application with identifier '{client_id}' was not found in the directory."
            ),
        ));
    }
    match form.get("client_secret") {
        Some(secret) if secret != auth::CLIENT_SECRET => Err(aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        )),
        None if secret_required => Err(aad(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        _ => Ok(()),
    }
}

/// What a grant yields: the audience and whether a refresh token comes along.
fn grant(
    sandbox: &Sandbox,
    form: &HashMap<String, String>,
    audience_key: &str,
) -> Result<(String, bool), ApiError> {
    let grant_type = require(form, "grant_type")?;
    let audience = form.get(audience_key).cloned().unwrap_or_default();
    match grant_type {
        "client_credentials" => {
            check_client(form, true)?;
            let audience = require(form, audience_key)?.to_owned();
            if audience_key == "scope" && !audience.ends_with("/.default") {
                return Err(aad(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                ));
            }
            Ok((audience, false))
        }
        "refresh_token" => {
            check_client(form, false)?;
            let token = require(form, "refresh_token")?;
            let valid =
                sandbox.with_core(|core| auth::valid_refresh(core, Issuer::Microsoft, token));
            if !valid {
                return Err(aad(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "AADSTS9002313: Invalid request. Request is malformed or invalid.",
                ));
            }
            Ok((audience, true))
        }
        "password" => {
            check_client(form, false)?;
            let user = require(form, "username")?;
            let password = require(form, "password")?;
            if user != auth::USERNAME || password != auth::PASSWORD {
                return Err(aad(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "AADSTS50126: Error validating credentials due to invalid username or password.",
                ));
            }
            Ok((audience, true))
        }
        other => Err(aad(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("AADSTS70003: The app requested an unsupported grant type '{other}'."),
        )),
    }
}

async fn token_v2(
    State(sandbox): State<Sandbox>,
    Path(_tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let form = form(&headers, &body)?;
    let (scope, with_refresh) = grant(&sandbox, &form, "scope")?;
    let (access, lifetime, refresh) = sandbox.with_core(|core| {
        let (access, lifetime) = auth::issue(core, Issuer::Microsoft, &scope);
        let refresh = with_refresh.then(|| auth::issue_refresh(core, Issuer::Microsoft));
        (access, lifetime, refresh)
    });
    let mut body = json!({
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    Ok(Json(body))
}

async fn token_v1(
    State(sandbox): State<Sandbox>,
    Path(_tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let form = form(&headers, &body)?;
    let (resource, with_refresh) = grant(&sandbox, &form, "resource")?;
    let (access, lifetime, refresh) = sandbox.with_core(|core| {
        let (access, lifetime) = auth::issue(core, Issuer::Microsoft, &resource);
        let refresh = with_refresh.then(|| auth::issue_refresh(core, Issuer::Microsoft));
        (access, lifetime, refresh)
    });
    let now = Utc::now().timestamp();
    let mut body = json!({
        "token_type": "Bearer",
        "scope": "user_impersonation",
        "expires_in": lifetime.to_string(),
        "ext_expires_in": lifetime.to_string(),
        "expires_on": (now + i64::try_from(lifetime).unwrap_or(0)).to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "access_token": access,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    Ok(Json(body))
}

fn salesforce_error(code: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": code, "error_description": message})),
    )
        .into_response()
}

/// `POST /services/oauth2/token` on the Salesforce listener.
pub(crate) async fn salesforce_token(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = form(&headers, &body) else {
        return salesforce_error(
            "invalid_request",
            "must use Content-Type: application/x-www-form-urlencoded",
        );
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let client_ok = field("client_id") == auth::SALESFORCE_CLIENT_ID
        && field("client_secret") == auth::SALESFORCE_CLIENT_SECRET;
    let refresh = match field("grant_type") {
        "client_credentials" if client_ok => false,
        "client_credentials" => {
            return salesforce_error("invalid_client", "invalid client credentials");
        }
        "password" if client_ok && field("username") == auth::USERNAME => {
            if field("password") != auth::PASSWORD {
                return salesforce_error("invalid_grant", "authentication failure");
            }
            true
        }
        "password" => return salesforce_error("invalid_grant", "authentication failure"),
        "refresh_token" => {
            let valid = field("client_id") == auth::SALESFORCE_CLIENT_ID
                && sandbox.with_core(|core| {
                    auth::valid_refresh(core, Issuer::Salesforce, field("refresh_token"))
                });
            if !valid {
                return salesforce_error("invalid_grant", "expired access/refresh token");
            }
            false
        }
        "" => return salesforce_error("unsupported_grant_type", "grant type not supported"),
        _ => return salesforce_error("unsupported_grant_type", "grant type not supported"),
    };
    let (access, refresh_token) = sandbox.with_core(|core| {
        let (access, _) = auth::issue(core, Issuer::Salesforce, "");
        let refresh_token = refresh.then(|| auth::issue_refresh(core, Issuer::Salesforce));
        (access, refresh_token)
    });
    let instance_url = sandbox.urls().salesforce.clone();
    let id = format!(
        "{instance_url}/id/{}/{}",
        ids::ORGANIZATION_ID,
        ids::INTEGRATION_USER_ID
    );
    let issued_at = Utc::now().timestamp_millis().to_string();
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        auth::SALESFORCE_CLIENT_SECRET.as_bytes(),
    );
    let tag = aws_lc_rs::hmac::sign(&key, format!("{id}{issued_at}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    let mut body = json!({
        "access_token": access,
        "signature": signature,
        "scope": "api",
        "instance_url": instance_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
    });
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    Json(body).into_response()
}
