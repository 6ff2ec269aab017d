//! A webhook signed by the sandbox verifies with the service's verifier
//! (`cosync::server::verify`), fetching the sandbox's certificate over HTTP; a
//! tampered body, or a certificate host that is not allowed, does not.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use cosync::runtime::BoxFuture;
use cosync::sandbox::{SandboxConfig, start};
use cosync::server::verify::{
    CertificateFetcher, MICROSOFT_ISSUER, SignatureHeaders, Verifier, VerifyError,
};
use serde_json::json;

struct HttpFetcher(reqwest::Client);

impl CertificateFetcher for HttpFetcher {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let response = self.0.get(url).send().await.map_err(|e| e.to_string())?;
            Ok(response.bytes().await.map_err(|e| e.to_string())?.to_vec())
        })
    }
}

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/webhooks/partner-center",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                if let Ok(mut r) = store.lock() {
                    r.push((headers, body));
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/webhooks/partner-center"), received)
}

#[tokio::test]
async fn sandbox_deliveries_verify_and_tampering_is_caught() {
    let (url, received) = receiver().await;
    let seed_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let seed = json!({"partner_center": {"webhook": {"WebhookUrl": url, "WebhookEvents": ["referral-created", "referral-updated"]}}});
    std::fs::write(seed_dir.path().join("hook.json"), seed.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let sandbox = start(SandboxConfig {
        seed_dir: Some(seed_dir.path().to_path_buf()),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let client = reqwest::Client::new();
    let admin = sandbox.urls().admin.clone();
    let created = client
        .post(format!("{admin}/_sandbox/partner_center/referrals"))
        .json(&json!({"name": "Contoso migration", "customerProfile": {"name": "Contoso", "address": {"country": "US"}}}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        created.status().is_success(),
        "{}",
        created.text().await.unwrap_or_default()
    );

    let mut delivery = None;
    for _ in 0..100 {
        if let Some(d) = received.lock().ok().and_then(|r| r.first().cloned()) {
            delivery = Some(d);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (headers, body) = delivery.unwrap_or_else(|| panic!("no webhook delivered"));
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    assert_eq!(event["EventName"], "referral-created");

    let admin_host = url::Url::parse(&admin)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port()?)))
        .unwrap_or_default();
    let verifier = Verifier::new(
        vec![admin_host],
        MICROSOFT_ISSUER,
        Box::new(HttpFetcher(client.clone())),
    );
    let signature = SignatureHeaders::from_headers(&headers);
    assert_eq!(verifier.verify(&signature, &body).await, Ok(()));

    let mut tampered = body.to_vec();
    if let Some(b) = tampered.iter_mut().find(|b| b.is_ascii_digit()) {
        *b = if *b == b'9' { b'0' } else { *b + 1 };
    }
    assert_eq!(
        verifier.verify(&signature, &tampered).await,
        Err(VerifyError::BadSignature)
    );

    let strict = Verifier::new(
        vec!["pcnotifications-dispatch.microsoft.com".into()],
        MICROSOFT_ISSUER,
        Box::new(HttpFetcher(client)),
    );
    assert!(matches!(
        strict.verify(&signature, &body).await,
        Err(VerifyError::CertificateHost(_))
    ));
    sandbox.shutdown().await;
}
