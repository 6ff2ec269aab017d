//! The one HTTP layer every connector goes through — the only place a reqwest
//! client is built. A [`Connection`] is one configured service endpoint: its base
//! URL and allow-list ([`UrlGuard`]), credentials ([`TokenSource`]), timeout,
//! retry policy and request budget. [`Connection::send`] checks the URL before any
//! token is attached, waits for the budget, retries 429/502/503/504 and connection
//! failures with exponential backoff and full jitter (honouring `Retry-After`),
//! refreshes the token once after a 401, tags every request with a correlation id,
//! and scrubs secrets from every message.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use super::auth::{Token, TokenSource, transport};
use super::budget::RequestBudget;
use super::guard::{UrlGuard, describe_host};
use super::retry::{RetryPolicy, retry_after};
use super::secrets::{Redactor, resolve};
use super::wire::{Dialect, error_message, retryable_status};
use crate::runtime::connectors::{ConnectorError, ErrorKind};
use crate::spec::project::{ConnectionSpec, LimitsSpec};

/// Default per-request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read into memory.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The shared HTTP client (connection pool, TLS) of a connector set.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    /// Builds the client: rustls, no redirects (a redirect could leave the
    /// allow-list), and the system proxy unless `use_system_proxy` is false.
    pub(crate) fn new(use_system_proxy: bool) -> Result<HttpClient, String> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("cosync/", env!("CARGO_PKG_VERSION")));
        if !use_system_proxy {
            builder = builder.no_proxy();
        }
        builder
            .build()
            .map(|client| HttpClient { client })
            .map_err(|e| e.to_string())
    }
}

/// One request to send.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// Method.
    pub(crate) method: Method,
    /// Absolute URL (checked against the allow-list when sent).
    pub(crate) url: Url,
    /// Extra headers.
    pub(crate) headers: Vec<(String, String)>,
    /// JSON body.
    pub(crate) body: Option<Value>,
    /// Safe to repeat after a timeout (the service may have acted on it).
    pub(crate) idempotent: bool,
}

impl Call {
    /// A request without body; POST counts as not idempotent.
    pub(crate) fn new(method: Method, url: Url) -> Call {
        let idempotent = method != Method::POST;
        Call {
            method,
            url,
            headers: Vec::new(),
            body: None,
            idempotent,
        }
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Call {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sets a JSON body.
    pub(crate) fn json(mut self, body: Value) -> Call {
        self.body = Some(body);
        self
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// HTTP status.
    pub(crate) status: u16,
    /// Headers.
    pub(crate) headers: HeaderMap,
    /// The JSON body (`null` when empty; a string when not JSON).
    pub(crate) body: Value,
    /// The request's correlation id.
    pub(crate) correlation_id: String,
    /// Attempts made.
    pub(crate) attempts: u32,
    what: String,
}

impl Reply {
    /// A header's value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// True for 2xx.
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

struct Resolved {
    base: Url,
    guard: UrlGuard,
}

/// One configured endpoint of a connector.
pub(crate) struct Connection {
    name: String,
    dialect: Dialect,
    client: reqwest::Client,
    spec: ConnectionSpec,
    resolved: Mutex<Option<Arc<Resolved>>>,
    tokens: TokenSource,
    retry: RetryPolicy,
    budget: RequestBudget,
    timeout: Duration,
    redactor: Redactor,
}

enum Failure {
    /// Worth another attempt, after the service's `Retry-After` when it sent one.
    Retry(ConnectorError, Option<Duration>),
    Stop(ConnectorError),
}

impl Connection {
    /// A connection named `name` (the connector's name, for messages), speaking
    /// `dialect`, configured by `spec`; `limits` apply when `spec` sets none.
    pub(crate) fn new(
        name: &str,
        dialect: Dialect,
        client: &HttpClient,
        spec: &ConnectionSpec,
        limits: &LimitsSpec,
    ) -> Connection {
        Connection {
            name: name.to_string(),
            dialect,
            client: client.client.clone(),
            spec: spec.clone(),
            resolved: Mutex::new(None),
            tokens: TokenSource::new(spec.auth.as_ref()),
            retry: RetryPolicy::new(spec.retry.as_ref()),
            budget: RequestBudget::new(spec.limits.as_ref(), limits),
            timeout: spec
                .timeout
                .as_ref()
                .and_then(|t| t.to_std())
                .filter(|t| !t.is_zero())
                .unwrap_or(DEFAULT_TIMEOUT),
            redactor: Redactor::default(),
        }
    }

    /// The connector's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn resolved(&self) -> Result<Arc<Resolved>, ConnectorError> {
        let mut slot = match self.resolved.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let invalid = |m: String| ConnectorError::new(ErrorKind::Invalid, m);
        let text = self
            .spec
            .base_url
            .as_deref()
            .ok_or_else(|| invalid(format!("connection `{}` has no base_url", self.name)))?;
        let base_text = resolve(text)
            .map_err(|e| invalid(format!("connection `{}`: base_url: {e}", self.name)))?;
        let base = Url::parse(base_text.expose().trim())
            .map_err(|e| invalid(format!("connection `{}`: base_url: {e}", self.name)))?;
        let mut hosts = Vec::new();
        for h in &self.spec.allowed_hosts {
            let h = resolve(h)
                .map_err(|e| invalid(format!("connection `{}`: allowed_hosts: {e}", self.name)))?;
            hosts.push(h.expose().to_string());
        }
        let guard = UrlGuard::new(&[&base], &hosts)
            .map_err(|e| invalid(format!("connection `{}`: {e}", self.name)))?;
        let r = Arc::new(Resolved { base, guard });
        *slot = Some(r.clone());
        Ok(r)
    }

    /// The configured base URL.
    pub(crate) fn base(&self) -> Result<Url, ConnectorError> {
        Ok(self.resolved()?.base.clone())
    }

    /// Checks a URL from outside against the allow-list (no request is made).
    pub(crate) fn check(&self, url: &Url) -> Result<(), ConnectorError> {
        self.resolved()?.guard.check(url)
    }

    /// Resolves `text` (absolute or relative to `base`) and checks it.
    pub(crate) fn resolve_url(&self, base: &Url, text: &str) -> Result<Url, ConnectorError> {
        self.resolved()?.guard.resolve(base, text)
    }

    /// Where API calls go: Salesforce's `instance_url` from the token answer
    /// (checked against the allow-list), else the base URL.
    pub(crate) async fn api_base(&self) -> Result<Url, ConnectorError> {
        let resolved = self.resolved()?;
        if self.dialect != Dialect::Salesforce {
            return Ok(resolved.base.clone());
        }
        let token = self.token_retrying().await?;
        match token.and_then(|t| t.instance_url) {
            Some(instance) => {
                let url = Url::parse(&instance).map_err(|e| {
                    ConnectorError::new(ErrorKind::Invalid, format!("instance_url: {e}"))
                })?;
                resolved.guard.check(&url).map_err(|e| {
                    ConnectorError::new(
                        e.kind,
                        format!("instance_url from the token answer: {}", e.message),
                    )
                })?;
                Ok(url)
            }
            None => Ok(resolved.base.clone()),
        }
    }

    /// A token outside [`Connection::send`] (Salesforce's `instance_url`), with
    /// the same retries of token endpoint failures: 429 and 5xx answers and
    /// connection errors, after `Retry-After` when the endpoint sends one.
    async fn token_retrying(&self) -> Result<Option<Token>, ConnectorError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self
                .tokens
                .token(&self.client, self.timeout, &self.redactor)
                .await
            {
                Ok(token) => return Ok(token),
                Err(e)
                    if attempt < self.retry.attempts()
                        && matches!(e.kind, ErrorKind::Transient | ErrorKind::Throttled) =>
                {
                    let delay = match self.tokens.retry_after() {
                        Some(wait) if wait > self.retry.longest_wait() => {
                            return Err(self.scrubbed(e));
                        }
                        Some(wait) => wait,
                        None => self.retry.backoff(attempt),
                    };
                    tracing::debug!(connector = %self.name, error = %self.redactor.scrub(&e.message), delay_ms = delay.as_millis() as u64, "retrying the token request");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(self.scrubbed(e)),
            }
        }
    }

    fn scrubbed(&self, mut e: ConnectorError) -> ConnectorError {
        e.message = self.redactor.scrub(&e.message);
        e
    }

    /// Sends `call`; a non-2xx final answer becomes a [`ConnectorError`].
    pub(crate) async fn send(&self, call: Call) -> Result<Reply, ConnectorError> {
        let reply = self.send_raw(call).await?;
        if reply.is_success() {
            Ok(reply)
        } else {
            Err(self.error(&reply))
        }
    }

    /// The error an unsuccessful answer means.
    pub(crate) fn error(&self, reply: &Reply) -> ConnectorError {
        self.error_as(
            reply,
            self.dialect.classify(reply.status, &reply.body),
            None,
        )
    }

    /// An error for `reply` with a chosen kind and (optionally) message.
    pub(crate) fn error_as(
        &self,
        reply: &Reply,
        kind: ErrorKind,
        message: Option<String>,
    ) -> ConnectorError {
        let detail = message
            .or_else(|| error_message(&reply.body))
            .unwrap_or_else(|| "no details".into());
        let mut text = format!("HTTP {} from {}: {detail}", reply.status, reply.what);
        if reply.attempts > 1 {
            text.push_str(&format!(" (after {} attempts)", reply.attempts));
        }
        if let Some(wait) = retry_after(&reply.headers).filter(|_| kind == ErrorKind::Throttled) {
            text.push_str(&format!(" (retry after {}s)", wait.as_secs()));
        }
        text.push_str(&format!(" [correlation id {}]", reply.correlation_id));
        ConnectorError {
            kind,
            message: self.redactor.scrub(&text),
            status: Some(reply.status),
            stale: false,
        }
    }

    /// Sends `call` and returns the final answer whatever its status (after
    /// retries); errors only for refused URLs, credentials and transport failures.
    pub(crate) async fn send_raw(&self, call: Call) -> Result<Reply, ConnectorError> {
        self.resolved()?.guard.check(&call.url)?;
        let correlation = uuid::Uuid::new_v4().to_string();
        let honoured = self.retry.longest_wait();
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts();
            match self.attempt(&call, &correlation, attempt).await {
                Ok((reply, generation)) => {
                    if reply.status == 401 && !refreshed && self.tokens.can_refresh() {
                        refreshed = true;
                        if let Some(g) = generation {
                            self.tokens.invalidate(g);
                        }
                        attempt -= 1;
                        continue;
                    }
                    if !retryable_status(reply.status) || last {
                        return Ok(reply);
                    }
                    let delay = match retry_after(&reply.headers) {
                        Some(wait) if wait > honoured => return Ok(reply),
                        Some(wait) => wait,
                        None => self.retry.backoff(attempt),
                    };
                    tracing::debug!(connector = %self.name, status = reply.status, delay_ms = delay.as_millis() as u64, correlation_id = %correlation, "retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(Failure::Retry(e, wait)) if !last => {
                    let delay = match wait {
                        Some(wait) if wait > honoured => return Err(self.scrubbed(e)),
                        Some(wait) => wait,
                        None => self.retry.backoff(attempt),
                    };
                    tracing::debug!(connector = %self.name, error = %self.redactor.scrub(&e.message), delay_ms = delay.as_millis() as u64, correlation_id = %correlation, "retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(Failure::Retry(mut e, _)) => {
                    if attempt > 1 {
                        e.message.push_str(&format!(" (after {attempt} attempts)"));
                    }
                    return Err(self.scrubbed(e));
                }
                Err(Failure::Stop(e)) => return Err(self.scrubbed(e)),
            }
        }
    }

    async fn attempt(
        &self,
        call: &Call,
        correlation: &str,
        attempt: u32,
    ) -> Result<(Reply, Option<u64>), Failure> {
        let _permit = self.budget.acquire().await;
        let token = match self
            .tokens
            .token(&self.client, self.timeout, &self.redactor)
            .await
        {
            Ok(t) => t,
            Err(e) if matches!(e.kind, ErrorKind::Transient | ErrorKind::Throttled) => {
                return Err(Failure::Retry(e, self.tokens.retry_after()));
            }
            Err(e) => return Err(Failure::Stop(e)),
        };
        let what = format!("{} {}", call.method, call.url.path());
        let mut request = self
            .client
            .request(call.method.clone(), call.url.clone())
            .timeout(self.timeout)
            .header("Accept", "application/json");
        for (name, value) in self.dialect.standard_headers() {
            request = request.header(*name, *value);
        }
        let (per_operation, per_attempt) = self.dialect.correlation_headers();
        if let Some(h) = per_operation {
            request = request.header(h, correlation);
        }
        if let Some(h) = per_attempt {
            request = request.header(h, uuid::Uuid::new_v4().to_string());
        }
        for (name, value) in &call.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(t) = &token {
            request = request.bearer_auth(t.access.expose());
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let started = Instant::now();
        let sent = request.send().await;
        let outcome = match sent {
            Ok(response) => read(response).await,
            Err(e) => Err(e),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok((status, headers, body)) => {
                tracing::debug!(connector = %self.name, request = %what, status, attempt, elapsed_ms, correlation_id = %correlation, "http");
                let reply = Reply {
                    status,
                    headers,
                    body,
                    correlation_id: correlation.to_string(),
                    attempts: attempt,
                    what,
                };
                Ok((reply, token.map(|t| t.generation)))
            }
            Err(e) if e.is_builder() => Err(Failure::Stop(ConnectorError::new(
                ErrorKind::Invalid,
                format!(
                    "{what}: the request cannot be built (a header name or value is not valid HTTP)"
                ),
            ))),
            Err(e) => {
                tracing::debug!(connector = %self.name, request = %what, attempt, elapsed_ms, correlation_id = %correlation, "http failed");
                let message = format!(
                    "{what} to {}: {} [correlation id {correlation}]",
                    describe_host(&call.url),
                    transport(&e)
                );
                let error = ConnectorError::new(ErrorKind::Transient, message);
                if e.is_connect() || call.idempotent {
                    Err(Failure::Retry(error, None))
                } else {
                    Err(Failure::Stop(error))
                }
            }
        }
    }
}

async fn read(mut response: reqwest::Response) -> Result<(u16, HeaderMap, Value), reqwest::Error> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            Value::String(super::wire::truncate(&String::from_utf8_lossy(&bytes)))
        })
    };
    Ok((status, headers, body))
}

/// `base` + `path` (which starts with `/`), keeping the base's own path prefix.
pub(crate) fn join(base: &Url, path: &str) -> Result<Url, ConnectorError> {
    let text = format!("{}{}", base.as_str().trim_end_matches('/'), path);
    Url::parse(&text).map_err(|e| ConnectorError::new(ErrorKind::Invalid, format!("bad URL: {e}")))
}

/// A path segment with everything but unreserved characters percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
