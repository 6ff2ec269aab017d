//! A small client of the sandbox's admin API (`/_sandbox/`): edits "as a user
//! would" and reads of what the services hold.

use reqwest::Method;
use serde_json::Value;

/// The sandbox admin API at one base URL.
#[derive(Debug, Clone)]
pub struct Admin {
    client: reqwest::Client,
    base: String,
    service: Option<String>,
}

impl Admin {
    /// A client of the admin API at `base` (the sandbox's `admin` URL).
    pub fn new(base: &str) -> Result<Admin, String> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Admin {
            client,
            base: base.trim_end_matches('/').to_string(),
            service: None,
        })
    }

    /// Also watches the sync service at `base` (its `/readyz`), so that
    /// [`Admin::settle`] can wait for it to be idle.
    pub fn with_service(mut self, base: &str) -> Admin {
        self.service = Some(base.trim_end_matches('/').to_string());
        self
    }

    /// Waits (up to `timeout`) until the service has no event queued or running,
    /// as a person would wait for the sync to finish before editing again.
    pub async fn settle(&self, timeout: std::time::Duration) {
        let Some(service) = &self.service else {
            return;
        };
        let started = std::time::Instant::now();
        while started.elapsed() < timeout {
            let ready = self.client.get(format!("{service}/readyz")).send().await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
            {
                let n = |k: &str| {
                    v.pointer(&format!("/events/{k}"))
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                };
                if n("queued") == 0 && n("running") == 0 {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Sends `method` to `/_sandbox/{path}` with an optional JSON body; the JSON
    /// answer (`null` for an empty one).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/_sandbox/{}", self.base, path.trim_start_matches('/'));
        let mut request = self
            .client
            .request(method.clone(), &url)
            .header("Prefer", "return=representation");
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{method} {url} answered {status}: {text}"));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| format!("{method} {url}: not JSON: {e}"))
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.send(Method::GET, path, None).await
    }

    /// POST.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// PATCH.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.send(Method::PATCH, path, Some(body)).await
    }

    /// Every referral.
    pub async fn referrals(&self) -> Result<Vec<Value>, String> {
        let v = self.get("partner_center/referrals").await?;
        Ok(rows(v))
    }

    /// Rows of a Dataverse entity set matching an OData `$filter`.
    pub async fn dataverse(&self, set: &str, filter: &str) -> Result<Vec<Value>, String> {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("$filter", filter)
            .finish();
        let v = self.get(&format!("dataverse/{set}?{q}")).await?;
        Ok(rows(v))
    }

    /// Every record of a Salesforce sObject.
    pub async fn salesforce(&self, sobject: &str) -> Result<Vec<Value>, String> {
        let v = self.get(&format!("salesforce/{sobject}")).await?;
        Ok(rows(v))
    }
}

/// The records of an answer: an array, or OData's `value`.
fn rows(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("value") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
