//! Credentials of one connection: OAuth 2.0 client-credentials and refresh-token
//! grants against the configured token endpoint, or a static bearer token. Tokens
//! are cached and refreshed before they expire (`expires_in` as a number or a
//! string); a token without `expires_in` (Salesforce) is kept until the service
//! answers 401, then refreshed once. Refreshes are single-flight, and a rotated
//! refresh token replaces the configured one in memory.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::secrets::{Redactor, Secret, resolve};
use super::wire::error_message;
use crate::runtime::connectors::{ConnectorError, ErrorKind};
use crate::spec::project::{AuthSpec, OAuth2Grant, OAuth2Spec};

/// Refresh at most this long before a token expires.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A usable access token.
#[derive(Clone)]
pub(crate) struct Token {
    /// The bearer token.
    pub(crate) access: Secret,
    /// Salesforce's `instance_url`, where data calls go.
    pub(crate) instance_url: Option<String>,
    /// Which fetch produced it (to invalidate exactly this one after a 401).
    pub(crate) generation: u64,
    refresh_at: Option<Instant>,
}

enum Method {
    None,
    Bearer(String),
    OAuth2(Box<OAuth2Spec>),
}

/// The credentials of a connection, with their cache.
pub(crate) struct TokenSource {
    method: Method,
    cache: Mutex<Option<Token>>,
    refreshing: tokio::sync::Mutex<()>,
    rotated_refresh_token: Mutex<Option<Secret>>,
    generation: AtomicU64,
    /// `Retry-After` of the last refused token request.
    refused_retry_after: Mutex<Option<Duration>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn resolved(field: &str, text: &str) -> Result<Secret, ConnectorError> {
    resolve(text).map_err(|e| ConnectorError::new(ErrorKind::Invalid, format!("{field}: {e}")))
}

impl TokenSource {
    /// The credentials described by `auth` (none when absent).
    pub(crate) fn new(auth: Option<&AuthSpec>) -> TokenSource {
        let method = match auth {
            Some(AuthSpec::Oauth2(o)) => Method::OAuth2(Box::new(o.clone())),
            Some(AuthSpec::Bearer(b)) => Method::Bearer(b.token.clone()),
            Some(AuthSpec::None(_)) | None => Method::None,
        };
        TokenSource {
            method,
            cache: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            rotated_refresh_token: Mutex::new(None),
            generation: AtomicU64::new(0),
            refused_retry_after: Mutex::new(None),
        }
    }

    /// True when a 401 is worth a fresh token.
    pub(crate) fn can_refresh(&self) -> bool {
        !matches!(self.method, Method::None)
    }

    /// Forgets the token from fetch `generation` (a newer one is kept).
    pub(crate) fn invalidate(&self, generation: u64) {
        let mut cache = lock(&self.cache);
        if cache.as_ref().is_some_and(|t| t.generation == generation) {
            *cache = None;
        }
    }

    /// The `Retry-After` the token endpoint sent with its last refusal (taken:
    /// a second call answers `None`).
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        lock(&self.refused_retry_after).take()
    }

    fn cached(&self) -> Option<Token> {
        lock(&self.cache)
            .as_ref()
            .filter(|t| t.refresh_at.is_none_or(|at| Instant::now() < at))
            .cloned()
    }

    /// A valid token (from the cache, or fetched now), or `None` without auth.
    pub(crate) async fn token(
        &self,
        client: &reqwest::Client,
        timeout: Duration,
        redactor: &Redactor,
    ) -> Result<Option<Token>, ConnectorError> {
        if matches!(self.method, Method::None) {
            return Ok(None);
        }
        if let Some(t) = self.cached() {
            return Ok(Some(t));
        }
        let _single_flight = self.refreshing.lock().await;
        if let Some(t) = self.cached() {
            return Ok(Some(t));
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let token = match &self.method {
            Method::None => return Ok(None),
            Method::Bearer(reference) => {
                let access = resolved("auth.bearer.token", reference)?;
                redactor.remember(&access);
                Token {
                    access,
                    instance_url: None,
                    generation,
                    refresh_at: None,
                }
            }
            Method::OAuth2(spec) => {
                self.fetch(spec, client, timeout, redactor, generation)
                    .await?
            }
        };
        *lock(&self.cache) = Some(token.clone());
        Ok(Some(token))
    }

    async fn fetch(
        &self,
        spec: &OAuth2Spec,
        client: &reqwest::Client,
        timeout: Duration,
        redactor: &Redactor,
        generation: u64,
    ) -> Result<Token, ConnectorError> {
        let token_url = resolved("auth.oauth2.token_url", &spec.token_url)?;
        let client_id = resolved("auth.oauth2.client_id", &spec.client_id)?;
        let mut form: Vec<(&str, String)> = vec![("client_id", client_id.expose().to_string())];
        if let Some(s) = &spec.client_secret {
            let secret = resolved("auth.oauth2.client_secret", s)?;
            redactor.remember(&secret);
            form.push(("client_secret", secret.expose().to_string()));
        }
        match spec.grant {
            OAuth2Grant::ClientCredentials => {
                form.push(("grant_type", "client_credentials".into()))
            }
            OAuth2Grant::RefreshToken => {
                let rotated = lock(&self.rotated_refresh_token).clone();
                let refresh = match (rotated, &spec.refresh_token) {
                    (Some(r), _) => r,
                    (None, Some(r)) => resolved("auth.oauth2.refresh_token", r)?,
                    (None, None) => {
                        return Err(ConnectorError::new(
                            ErrorKind::Invalid,
                            "auth.oauth2: the refresh_token grant needs `refresh_token`",
                        ));
                    }
                };
                redactor.remember(&refresh);
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", refresh.expose().to_string()));
            }
        }
        for (key, value) in [("scope", &spec.scope), ("resource", &spec.resource)] {
            if let Some(v) = value {
                form.push((
                    key,
                    resolved(&format!("auth.oauth2.{key}"), v)?
                        .expose()
                        .to_string(),
                ));
            }
        }
        let url = url::Url::parse(token_url.expose()).map_err(|e| {
            ConnectorError::new(ErrorKind::Invalid, format!("auth.oauth2.token_url: {e}"))
        })?;
        let host = super::guard::describe_host(&url);
        *lock(&self.refused_retry_after) = None;
        let started = Instant::now();
        let response = client
            .post(url)
            .header("Accept", "application/json")
            .form(&form)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                let kind = if e.is_timeout() || e.is_connect() || e.is_request() {
                    ErrorKind::Transient
                } else {
                    ErrorKind::Unauthorized
                };
                ConnectorError::new(
                    kind,
                    redactor.scrub(&format!(
                        "token request to {host} failed: {}",
                        transport(&e)
                    )),
                )
            })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            *lock(&self.refused_retry_after) = super::retry::retry_after(response.headers());
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        tracing::debug!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "token request"
        );
        if !(200..300).contains(&status) {
            let kind = match status {
                429 => ErrorKind::Throttled,
                500..=599 => ErrorKind::Transient,
                _ => ErrorKind::Unauthorized,
            };
            let detail = error_message(&body).unwrap_or_else(|| "no details".into());
            let mut e = ConnectorError::new(
                kind,
                redactor.scrub(&format!(
                    "token request to {host} refused (HTTP {status}): {detail}"
                )),
            );
            e.status = Some(status);
            return Err(e);
        }
        self.parse(&body, started, redactor, generation)
    }

    fn parse(
        &self,
        body: &Value,
        started: Instant,
        redactor: &Redactor,
        generation: u64,
    ) -> Result<Token, ConnectorError> {
        let access = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                ConnectorError::new(
                    ErrorKind::Unauthorized,
                    "the token response has no access_token",
                )
            })?;
        redactor.remember(&access);
        if let Some(r) = body
            .get("refresh_token")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            let rotated = Secret::new(r);
            redactor.remember(&rotated);
            *lock(&self.rotated_refresh_token) = Some(rotated);
        }
        let lifetime = body.get("expires_in").and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        });
        let refresh_at = lifetime.filter(|s| s.is_finite() && *s >= 0.0).map(|secs| {
            let lifetime = Duration::from_secs_f64(secs.min(1e9));
            let margin = MAX_REFRESH_MARGIN.min(lifetime / 2);
            started + lifetime.saturating_sub(margin)
        });
        Ok(Token {
            access,
            instance_url: body
                .get("instance_url")
                .and_then(Value::as_str)
                .map(str::to_string),
            generation,
            refresh_at,
        })
    }
}

/// A transport error as one line, without the URL reqwest likes to append (the
/// caller names the host).
pub(crate) fn transport(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read"
    } else {
        "the request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut root = None;
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    match root {
        Some(r) => format!("{what} ({r})"),
        None => what.to_string(),
    }
}
