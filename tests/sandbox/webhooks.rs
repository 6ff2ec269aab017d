//! Webhook registration API and signed event delivery with retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Env, TestResult, config, eventually, referral};

/// One delivery the receiver saw.
#[derive(Clone)]
struct Hit {
    headers: HeaderMap,
    body: Bytes,
}

type ReceiverState = (Arc<Mutex<Vec<Hit>>>, Arc<AtomicUsize>);

#[derive(Clone)]
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

/// A local webhook receiver that answers 500 to the first `fail_first` deliveries.
async fn receiver(fail_first: usize) -> Result<Receiver, Box<dyn std::error::Error + Send + Sync>> {
    let hits = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(AtomicUsize::new(fail_first));
    let state = (hits.clone(), failures);
    let app =
        axum::Router::new()
            .route(
                "/events",
                post(
                    |State((hits, failures)): State<ReceiverState>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        if let Ok(mut hits) = hits.lock() {
                            hits.push(Hit { headers, body });
                        }
                        let failing = failures
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok();
                        if failing {
                            StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            StatusCode::OK
                        }
                    },
                ),
            )
            .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/events", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Receiver { url, hits })
}

/// Verifies a delivery as a receiver must: fetch the certificate from
/// `x-ms-certificate-url`, check its issuer, verify RSA-SHA256 over the raw body.
async fn verify(http: &reqwest::Client, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(format!("missing {name}"))
    };
    if header("x-ms-signature-algorithm")? != "rsa-sha256" {
        return Err("algorithm".into());
    }
    let signature = header("authorization")?;
    let signature = signature
        .strip_prefix("Signature ")
        .ok_or("scheme must be Signature")?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|e| e.to_string())?;
    let certificate = http
        .get(header("x-ms-certificate-url")?)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(&certificate).map_err(|e| e.to_string())?;
    if !parsed
        .issuer()
        .to_string()
        .contains("O=Microsoft Corporation")
    {
        return Err(format!("issuer {}", parsed.issuer()));
    }
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        parsed.public_key().subject_public_key.data.as_ref(),
    );
    key.verify(body, &signature)
        .map_err(|_| "signature does not verify".to_owned())
}

async fn register(
    env: &Env,
    token: &str,
    url: &str,
    events: &[&str],
) -> Result<crate::support::Resp, Box<dyn std::error::Error + Send + Sync>> {
    let body = json!({"WebhookUrl": url, "WebhookEvents": events});
    env.call(
        Method::POST,
        &format!(
            "{}/webhooks/v1/registration",
            env.urls.partner_center_webhooks
        ),
        Some(token),
        Some(&body),
        &[],
    )
    .await
}

#[tokio::test]
async fn registration_api_registers_views_updates_and_lists_events() -> TestResult {
    let env = Env::start().await?;
    let token = env
        .ms_token("https://api.partnercenter.microsoft.com/.default")
        .await?;
    let base = format!(
        "{}/webhooks/v1/registration",
        env.urls.partner_center_webhooks
    );
    let events = env.get(&format!("{base}/events"), &token).await?;
    for name in [
        "test-created",
        "referral-created",
        "referral-updated",
        "related-referral-created",
        "related-referral-updated",
    ] {
        assert!(
            events
                .json
                .as_array()
                .is_some_and(|e| e.contains(&json!(name))),
            "{name}"
        );
    }
    assert_eq!(env.get(&base, &token).await?.status, 404);
    let created = register(
        &env,
        &token,
        "https://example.com/hook",
        &["referral-created"],
    )
    .await?;
    assert_eq!(created.status, 200, "{}", created.text);
    assert!(created.json["SubscriberId"].is_string());
    assert_eq!(created.json["WebhookEvents"], json!(["referral-created"]));
    let view = env.get(&base, &token).await?;
    assert_eq!(view.json["WebhookUrl"], "https://example.com/hook");
    assert_eq!(
        register(
            &env,
            &token,
            "https://example.com/other",
            &["referral-created"]
        )
        .await?
        .status,
        409
    );
    let update = json!({"WebhookUrl": "https://example.com/v2", "WebhookEvents": ["referral-created", "referral-updated"]});
    let updated = env
        .call(Method::PUT, &base, Some(&token), Some(&update), &[])
        .await?;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.json["SubscriberId"], created.json["SubscriberId"]);
    assert_eq!(
        env.get(&base, &token).await?.json["WebhookUrl"],
        "https://example.com/v2"
    );
    let bad_event = env
        .call(
            Method::PUT,
            &base,
            Some(&token),
            Some(&json!({"WebhookUrl": "https://e.com", "WebhookEvents": ["referral-deleted"]})),
            &[],
        )
        .await?;
    assert_eq!(
        (bad_event.status, bad_event.json["error"]["code"].as_str()),
        (400, Some("invalidRequest"))
    );
    let bad_url = env
        .call(
            Method::PUT,
            &base,
            Some(&token),
            Some(&json!({"WebhookUrl": "not a url", "WebhookEvents": ["referral-created"]})),
            &[],
        )
        .await?;
    assert_eq!(bad_url.status, 400);
    Ok(())
}

#[tokio::test]
async fn referral_events_are_delivered_signed_and_verify_with_the_served_certificate() -> TestResult
{
    let env = Env::start().await?;
    let hook = receiver(0).await?;
    let token = env.pc_token().await?;
    let registered = register(
        &env,
        &token,
        &hook.url,
        &["referral-created", "referral-updated"],
    )
    .await?;
    assert_eq!(registered.status, 200, "{}", registered.text);
    let created = env.create_referral(&token, &referral("Signed")).await?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        eventually(|| async { !hook.hits().is_empty() }).await,
        "no delivery"
    );
    let hit = hook.hits().remove(0);
    let payload: Value = serde_json::from_slice(&hit.body)?;
    assert_eq!(payload["EventName"], "referral-created");
    assert_eq!(payload["ResourceName"], "referral");
    assert_eq!(payload["AuditUri"], Value::Null);
    let uri = payload["ResourceUri"].as_str().unwrap_or_default();
    assert_eq!(
        uri,
        format!(
            "{}/engagements/v1/referrals/{id}",
            env.urls.partner_center_webhooks
        )
    );
    let date = payload["ResourceChangeUtcDate"]
        .as_str()
        .unwrap_or_default();
    assert!(date.ends_with("+00:00") && date.len() == 33, "{date}");
    let keys: Vec<&String> = payload
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "EventName",
            "ResourceUri",
            "ResourceName",
            "AuditUri",
            "ResourceChangeUtcDate"
        ]
    );
    verify(&env.http, &hit.headers, &hit.body).await?;
    let mut tampered = hit.body.to_vec();
    tampered.extend_from_slice(b" ");
    assert!(
        verify(&env.http, &hit.headers, &tampered).await.is_err(),
        "a tampered body must not verify"
    );
    // The ResourceUri answers on the webhooks host with the referral.
    let resource = env.get(uri, &token).await?;
    assert_eq!(resource.json["id"], id.as_str());
    // PEM is served too.
    let pem = env
        .http
        .get(env.admin("certificate.pem"))
        .send()
        .await?
        .text()
        .await?;
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // An update raises referral-updated.
    let url = format!("{}/{id}", env.referrals());
    env.call(
        Method::PATCH,
        &url,
        Some(&token),
        Some(&json!([{"op": "replace", "path": "/details/notes", "value": "x"}])),
        &[],
    )
    .await?;
    assert!(eventually(|| async { hook.hits().len() >= 2 }).await);
    let second: Value = serde_json::from_slice(&hook.hits()[1].body)?;
    assert_eq!(second["EventName"], "referral-updated");
    Ok(())
}

#[tokio::test]
async fn failed_deliveries_are_retried_then_recorded() -> TestResult {
    let env = Env::start().await?;
    let flaky = receiver(2).await?;
    let token = env.pc_token().await?;
    register(&env, &token, &flaky.url, &["referral-created"]).await?;
    env.create_referral(&token, &referral("Retry")).await?;
    assert!(eventually(|| async { flaky.hits().len() >= 3 }).await);
    let deliveries = env
        .http
        .get(env.admin("deliveries"))
        .send()
        .await?
        .json::<Value>()
        .await?;
    let delivery = &deliveries[0];
    assert!(
        eventually(|| async {
            let d = env.http.get(env.admin("deliveries")).send().await.ok();
            match d {
                Some(d) => d
                    .json::<Value>()
                    .await
                    .ok()
                    .is_some_and(|v| v[0]["state"] == "delivered"),
                None => false,
            }
        })
        .await
    );
    assert_eq!(delivery["event"], "referral-created");
    let deliveries = env
        .http
        .get(env.admin("deliveries"))
        .send()
        .await?
        .json::<Value>()
        .await?;
    let attempts: Vec<Value> = deliveries[0]["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<Value> = attempts.iter().map(|a| a["status"].clone()).collect();
    assert_eq!(statuses, [json!(500), json!(500), json!(200)]);
    assert_eq!(deliveries[0]["last_status"], 200);
    // Every attempt carries the same signed body.
    let hits = flaky.hits();
    assert!(hits.windows(2).all(|w| w[0].body == w[1].body));

    // A receiver that never answers 2xx: max attempts, then failed.
    let mut config = config();
    config.settings.delivery.max_attempts = 3;
    let env = Env::start_with(config).await?;
    let broken = receiver(usize::MAX).await?;
    let token = env.pc_token().await?;
    register(&env, &token, &broken.url, &["referral-created"]).await?;
    env.create_referral(&token, &referral("Never")).await?;
    let failed = eventually(|| async {
        match env.http.get(env.admin("deliveries")).send().await {
            Ok(r) => r
                .json::<Value>()
                .await
                .ok()
                .is_some_and(|v| v[0]["state"] == "failed"),
            Err(_) => false,
        }
    })
    .await;
    assert!(failed);
    assert_eq!(broken.hits().len(), 3);
    Ok(())
}

#[tokio::test]
async fn test_events_are_sent_and_their_results_read() -> TestResult {
    let env = Env::start().await?;
    let hook = receiver(0).await?;
    let token = env
        .ms_token("https://api.partnercenter.microsoft.com/.default")
        .await?;
    let base = format!(
        "{}/webhooks/v1/registration",
        env.urls.partner_center_webhooks
    );
    register(&env, &token, &hook.url, &["referral-created"]).await?;
    let refused = env
        .call(
            Method::POST,
            &format!("{base}/validationEvents"),
            Some(&token),
            None,
            &[],
        )
        .await?;
    assert_eq!(refused.status, 400, "needs test-created");
    env.call(
        Method::PUT,
        &base,
        Some(&token),
        Some(&json!({"WebhookUrl": hook.url, "WebhookEvents": ["test-created"]})),
        &[],
    )
    .await?;
    let sent = env
        .call(
            Method::POST,
            &format!("{base}/validationEvents"),
            Some(&token),
            None,
            &[],
        )
        .await?;
    assert_eq!(sent.status, 200);
    let correlation = sent.json["correlationId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let result_url = format!("{base}/validationEvents/{correlation}");
    let done = eventually(|| async {
        match env.get(&result_url, &token).await {
            Ok(r) => r.json["status"] == "completed",
            Err(_) => false,
        }
    })
    .await;
    assert!(done);
    let result = env.get(&result_url, &token).await?;
    assert_eq!(result.json["callbackUrl"], hook.url.as_str());
    assert_eq!(result.json["results"][0]["responseCode"], "200");
    let payload: Value = serde_json::from_slice(&hook.hits()[0].body)?;
    assert_eq!(
        (
            payload["EventName"].as_str(),
            payload["ResourceName"].as_str()
        ),
        (Some("test-created"), Some("test"))
    );
    verify(&env.http, &hook.hits()[0].headers, &hook.hits()[0].body).await?;
    Ok(())
}

#[tokio::test]
async fn user_edits_through_the_admin_api_raise_webhooks() -> TestResult {
    let env = Env::start().await?;
    let hook = receiver(0).await?;
    let token = env.pc_token().await?;
    register(
        &env,
        &token,
        &hook.url,
        &[
            "referral-created",
            "referral-updated",
            "related-referral-created",
        ],
    )
    .await?;
    let lead = env
        .call(
            Method::POST,
            &env.admin("partner_center/referrals"),
            None,
            Some(&referral("From Microsoft")),
            &[],
        )
        .await?;
    let id = lead.json["id"].as_str().unwrap_or_default().to_owned();
    let edit = env
        .call(
            Method::PATCH,
            &env.admin(&format!("partner_center/referrals/{id}")),
            None,
            Some(&json!({"details": {"dealValue": 5}})),
            &[],
        )
        .await?;
    assert_eq!(edit.status, 200, "{}", edit.text);
    assert_eq!(edit.json["details"]["dealValue"], 5);
    assert!(eventually(|| async { hook.hits().len() >= 2 }).await);
    let names: Vec<String> = hook
        .hits()
        .iter()
        .filter_map(|h| serde_json::from_slice::<Value>(&h.body).ok())
        .map(|p| p["EventName"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        names.contains(&"referral-created".to_owned())
            && names.contains(&"referral-updated".to_owned()),
        "{names:?}"
    );
    // A Microsoft-side referral in the same engagement raises related-referral-created.
    let engagement = lead.json["engagementId"].clone();
    let related = json!({"name": "Microsoft side", "engagementId": engagement, "organizationId": "msft", "organizationName": "Microsoft"});
    env.call(
        Method::POST,
        &env.admin("partner_center/referrals"),
        None,
        Some(&related),
        &[],
    )
    .await?;
    assert!(
        eventually(|| async {
            hook.hits().iter().any(|h| {
                serde_json::from_slice::<Value>(&h.body)
                    .is_ok_and(|p| p["EventName"] == "related-referral-created")
            })
        })
        .await
    );
    Ok(())
}
