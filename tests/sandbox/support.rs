//! Shared helpers: a sandbox started in-process with fast settings, token helpers for
//! each service, and a small HTTP call wrapper.

use std::error::Error;

use cosync::sandbox::{self, SandboxConfig, SandboxHandle, SandboxUrls, Settings};
use reqwest::Method;
use serde_json::{Value, json};

/// Test result.
pub(crate) type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

/// A started sandbox and a client.
pub(crate) struct Env {
    pub(crate) handle: SandboxHandle,
    pub(crate) urls: SandboxUrls,
    pub(crate) http: reqwest::Client,
}

/// An answer.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) json: Value,
    pub(crate) text: String,
}

impl Resp {
    /// A header's value ("" when absent).
    pub(crate) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }
}

/// Settings that keep tests fast: short webhook backoff and timeouts.
pub(crate) fn fast_settings() -> Settings {
    let mut settings = Settings::default();
    settings.delivery.initial_backoff_ms = 10;
    settings.delivery.max_backoff_ms = 40;
    settings.delivery.timeout_ms = 2_000;
    settings
}

/// A fast config.
pub(crate) fn config() -> SandboxConfig {
    SandboxConfig {
        settings: fast_settings(),
        ..SandboxConfig::default()
    }
}

/// A client that never goes through a proxy.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"))
}

impl Env {
    /// Starts a sandbox with fast settings.
    pub(crate) async fn start() -> Result<Env, Box<dyn Error + Send + Sync>> {
        Env::start_with(config()).await
    }

    /// Starts a sandbox with this config.
    pub(crate) async fn start_with(
        config: SandboxConfig,
    ) -> Result<Env, Box<dyn Error + Send + Sync>> {
        let handle = sandbox::start(config).await?;
        let urls = handle.urls().clone();
        Ok(Env {
            handle,
            urls,
            http: client(),
        })
    }

    /// A request with an optional bearer token, JSON body and extra headers.
    pub(crate) async fn call(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, Box<dyn Error + Send + Sync>> {
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            headers,
            json,
            text,
        })
    }

    /// GET with a token.
    pub(crate) async fn get(
        &self,
        url: &str,
        token: &str,
    ) -> Result<Resp, Box<dyn Error + Send + Sync>> {
        self.call(Method::GET, url, Some(token), None, &[]).await
    }

    /// A form POST (token endpoints).
    pub(crate) async fn form(
        &self,
        url: &str,
        fields: &[(&str, &str)],
    ) -> Result<Resp, Box<dyn Error + Send + Sync>> {
        let response = self.http.post(url).form(fields).send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            headers,
            json,
            text,
        })
    }

    /// A Microsoft access token (client credentials, v2 endpoint).
    pub(crate) async fn ms_token(
        &self,
        scope: &str,
    ) -> Result<String, Box<dyn Error + Send + Sync>> {
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.urls.login,
            sandbox::TENANT_ID
        );
        let resp = self
            .form(
                &url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", sandbox::CLIENT_ID),
                    ("client_secret", sandbox::CLIENT_SECRET),
                    ("scope", scope),
                ],
            )
            .await?;
        token_of(&resp)
    }

    /// A Partner Center token (delegated: refresh-token grant on the v1 endpoint).
    pub(crate) async fn pc_token(&self) -> Result<String, Box<dyn Error + Send + Sync>> {
        let url = format!("{}/common/oauth2/token", self.urls.login);
        let resp = self
            .form(
                &url,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", sandbox::CLIENT_ID),
                    ("client_secret", sandbox::CLIENT_SECRET),
                    ("refresh_token", sandbox::REFRESH_TOKEN),
                    ("resource", "https://api.partner.microsoft.com"),
                ],
            )
            .await?;
        token_of(&resp)
    }

    /// A Dataverse token.
    pub(crate) async fn dv_token(&self) -> Result<String, Box<dyn Error + Send + Sync>> {
        let scope = format!("{}/.default", self.urls.dataverse);
        self.ms_token(&scope).await
    }

    /// A Salesforce token (client credentials).
    pub(crate) async fn sf_token(&self) -> Result<String, Box<dyn Error + Send + Sync>> {
        let url = format!("{}/services/oauth2/token", self.urls.salesforce);
        let resp = self
            .form(
                &url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", sandbox::SALESFORCE_CLIENT_ID),
                    ("client_secret", sandbox::SALESFORCE_CLIENT_SECRET),
                ],
            )
            .await?;
        token_of(&resp)
    }

    /// The referrals collection URL.
    pub(crate) fn referrals(&self) -> String {
        format!("{}/v1.0/engagements/referrals", self.urls.partner_center)
    }

    /// A Dataverse Web API URL.
    pub(crate) fn dv(&self, path: &str) -> String {
        format!("{}/api/data/v9.2/{path}", self.urls.dataverse)
    }

    /// A Salesforce REST URL.
    pub(crate) fn sf(&self, path: &str) -> String {
        format!("{}/services/data/v62.0/{path}", self.urls.salesforce)
    }

    /// An admin URL.
    pub(crate) fn admin(&self, path: &str) -> String {
        format!("{}/_sandbox/{path}", self.urls.admin)
    }

    /// Creates a referral through the API and returns it.
    pub(crate) async fn create_referral(
        &self,
        token: &str,
        body: &Value,
    ) -> Result<Value, Box<dyn Error + Send + Sync>> {
        let resp = self
            .call(
                Method::POST,
                &self.referrals(),
                Some(token),
                Some(body),
                &[],
            )
            .await?;
        if resp.status != 200 {
            return Err(format!("create referral: {} {}", resp.status, resp.text).into());
        }
        Ok(resp.json)
    }
}

fn token_of(resp: &Resp) -> Result<String, Box<dyn Error + Send + Sync>> {
    resp.json["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no token: {} {}", resp.status, resp.text).into())
}

/// A minimal valid referral.
pub(crate) fn referral(name: &str) -> Value {
    json!({
        "name": name,
        "type": "Independent",
        "qualification": "SalesQualified",
        "customerProfile": {
            "name": format!("{name} customer"),
            "address": {"addressLine1": "1 Main St", "city": "Redmond", "postalCode": "98052", "country": "US"},
            "size": "51to500employees",
        },
        "details": {"dealValue": 1000, "currency": "USD", "notes": "Seeded by a test"},
        "team": [{"email": "seller@contoso.example", "firstName": "Sam", "lastName": "Seller"}],
    })
}

/// Waits until `check` holds, polling every 10 ms for at most 5 s.
pub(crate) async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}
