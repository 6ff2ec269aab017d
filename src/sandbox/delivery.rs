//! Webhook event delivery: the documented payload (PascalCase, `ResourceUri` on the
//! webhooks host, `ResourceChangeUtcDate` with 7 fractional digits and `+00:00`), signed
//! RSA-SHA256 over the raw body, POSTed in the background and retried with doubling
//! backoff up to the policy's attempt limit (10, as Partner Center), then recorded as
//! failed. Every delivery is listed by `GET /_sandbox/deliveries`, with the exact
//! body and the headers it was sent with (signature included), so a test can
//! redeliver it as Partner Center would.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::SandboxUrls;
use super::stamp;
use super::state::{Core, DeliveryPolicy, Sandbox, ns};

/// How many deliveries the sandbox remembers.
const KEEP_DELIVERIES: usize = 1000;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeliveryState {
    Pending,
    Delivered,
    Failed,
    Cancelled,
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Attempt {
    pub(crate) at: String,
    /// The receiver's status, absent when the connection failed.
    pub(crate) status: Option<u16>,
    pub(crate) error: Option<String>,
    pub(crate) duration_ms: u64,
}

/// A delivery record.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Delivery {
    pub(crate) id: String,
    pub(crate) event: String,
    pub(crate) resource_uri: String,
    pub(crate) url: String,
    pub(crate) state: DeliveryState,
    pub(crate) created: String,
    pub(crate) last_status: Option<u16>,
    pub(crate) attempts: Vec<Attempt>,
    /// The signed body, as sent.
    pub(crate) body: Value,
    /// The headers it is sent with (content type, signature, certificate URL,
    /// algorithm), once signed.
    pub(crate) headers: Option<serde_json::Map<String, Value>>,
}

/// A delivery to run in the background.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    id: String,
    url: String,
    body: Vec<u8>,
    signature_header: &'static str,
    policy: DeliveryPolicy,
    validation: Option<String>,
}

/// Queues an event for a referral, when the registration subscribes to it.
pub(crate) fn enqueue_referral(
    core: &mut Core,
    urls: &SandboxUrls,
    event: &str,
    referral: &Value,
) -> Option<Job> {
    let id = referral.get("id").and_then(Value::as_str).unwrap_or("");
    let changed = referral
        .get("updatedDateTime")
        .and_then(Value::as_str)
        .and_then(stamp::parse)
        .unwrap_or_else(chrono::Utc::now);
    let uri = format!(
        "{}/engagements/v1/referrals/{id}",
        urls.partner_center_webhooks
    );
    enqueue(
        core,
        event,
        &uri,
        "referral",
        &stamp::webhook(changed),
        None,
    )
}

/// Queues an event; `validation` names the test event whose results it fills.
pub(crate) fn enqueue(
    core: &mut Core,
    event: &str,
    resource_uri: &str,
    resource_name: &str,
    changed: &str,
    validation: Option<String>,
) -> Option<Job> {
    let registration = core.registration.as_ref()?;
    let subscribed = registration["WebhookEvents"]
        .as_array()
        .is_some_and(|events| {
            events
                .iter()
                .any(|e| e.as_str().is_some_and(|e| e.eq_ignore_ascii_case(event)))
        });
    if !subscribed {
        return None;
    }
    let url = registration["WebhookUrl"].as_str()?.to_owned();
    let signature_header = if registration["SignatureTokenToMsSignatureHeader"] == json!(true) {
        "x-ms-signature"
    } else {
        "authorization"
    };
    let body = json!({
        "EventName": event,
        "ResourceUri": resource_uri,
        "ResourceName": resource_name,
        "AuditUri": null,
        "ResourceChangeUtcDate": changed,
    });
    let id = uuid::Uuid::new_v4().to_string();
    core.deliveries.push_back(Delivery {
        id: id.clone(),
        event: event.to_owned(),
        resource_uri: resource_uri.to_owned(),
        url: url.clone(),
        state: DeliveryState::Pending,
        created: chrono::Utc::now().to_rfc3339(),
        last_status: None,
        attempts: Vec::new(),
        body: body.clone(),
        headers: None,
    });
    while core.deliveries.len() > KEEP_DELIVERIES {
        core.deliveries.pop_front();
    }
    Some(Job {
        id,
        url,
        body: body.to_string().into_bytes(),
        signature_header,
        policy: core.settings.delivery.clone(),
        validation,
    })
}

/// Starts delivering in the background.
pub(crate) fn spawn(sandbox: &Sandbox, job: Job) {
    let sandbox = sandbox.clone();
    tokio::spawn(async move { run(sandbox, job).await });
}

async fn run(sandbox: Sandbox, job: Job) {
    let signature = match sandbox.inner.signer.sign(&job.body) {
        Ok(signature) => signature,
        Err(error) => {
            tracing::error!(%error, "cannot sign a webhook event");
            finish(&sandbox, &job, DeliveryState::Failed);
            return;
        }
    };
    let headers = [
        ("content-type", "application/json; charset=utf-8".to_owned()),
        (job.signature_header, format!("Signature {signature}")),
        ("x-ms-certificate-url", sandbox.certificate_url()),
        ("x-ms-signature-algorithm", "rsa-sha256".to_owned()),
    ];
    sandbox.with_core(|core| {
        if let Some(delivery) = core.deliveries.iter_mut().find(|d| d.id == job.id) {
            delivery.headers = Some(
                headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
                    .collect(),
            );
        }
    });
    let mut shutdown = sandbox.inner.stop.subscribe();
    let mut backoff = Duration::from_millis(job.policy.initial_backoff_ms);
    let attempts = job.policy.max_attempts.max(1);
    for attempt in 1..=attempts {
        let started = Instant::now();
        let mut request = sandbox.inner.http.post(&job.url);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let request = request
            .timeout(Duration::from_millis(job.policy.timeout_ms.max(1)))
            .body(job.body.clone())
            .send();
        let outcome = tokio::select! {
            outcome = request => outcome,
            _ = shutdown.wait_for(|stop| *stop) => {
                finish(&sandbox, &job, DeliveryState::Cancelled);
                return;
            }
        };
        let (status, error) = match outcome {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(error) => (None, Some(error.to_string())),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        record(
            &sandbox,
            &job,
            Attempt {
                at: chrono::Utc::now().to_rfc3339(),
                status,
                error,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            },
        );
        if delivered {
            finish(&sandbox, &job, DeliveryState::Delivered);
            return;
        }
        if attempt < attempts {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait_for(|stop| *stop) => {
                    finish(&sandbox, &job, DeliveryState::Cancelled);
                    return;
                }
            }
            backoff = backoff
                .saturating_mul(2)
                .min(Duration::from_millis(job.policy.max_backoff_ms.max(1)));
        }
    }
    finish(&sandbox, &job, DeliveryState::Failed);
}

fn record(sandbox: &Sandbox, job: &Job, attempt: Attempt) {
    sandbox.with_core(|core| {
        if let Some(validation) = &job.validation
            && let Some(event) = core.validation_events.get_mut(validation) {
                let result = json!({
                    "responseCode": attempt.status.map_or_else(|| "0".to_owned(), |s| s.to_string()),
                    "responseMessage": attempt.status.map_or("", |s| if (200..300).contains(&s) { "OK" } else { "Error" }),
                    "systemError": attempt.error.clone().unwrap_or_default(),
                    "dateTimeUtc": attempt.at,
                });
                if let Some(results) = event["results"].as_array_mut() {
                    results.push(result);
                }
                let snapshot = event.clone();
                core.persist(ns::VALIDATION, validation, &snapshot);
            }
        if let Some(delivery) = core.deliveries.iter_mut().find(|d| d.id == job.id) {
            delivery.last_status = attempt.status;
            delivery.attempts.push(attempt);
        }
    });
}

fn finish(sandbox: &Sandbox, job: &Job, state: DeliveryState) {
    sandbox.with_core(|core| {
        if let Some(validation) = &job.validation
            && let Some(event) = core.validation_events.get_mut(validation)
        {
            event["status"] = json!("completed");
            let snapshot = event.clone();
            core.persist(ns::VALIDATION, validation, &snapshot);
        }
        if let Some(delivery) = core.deliveries.iter_mut().find(|d| d.id == job.id) {
            delivery.state = state;
        }
    });
}
