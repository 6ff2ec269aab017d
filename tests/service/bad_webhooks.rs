//! Bad webhooks, each refused with its status and nothing stored: a tampered
//! body (401), a certificate URL on a host that is not allowed (401, refused
//! before any fetch), no signature (401), a validly signed body that is not
//! JSON or lacks `EventName` (400), a validly signed `ResourceUri` on a foreign
//! host (400), a body over `server.max_body_bytes` (413), a body that is not
//! JSON by its content type (415). Validly signed bodies come from the
//! sandbox's `POST /_sandbox/sign`, as Partner Center would sign them; a well
//! formed one is accepted (the control).

use cosync::demo::{Admin, Crm};
use serde_json::{Map, Value, json};

use super::harness::*;

/// The headers the sandbox signs `body` with.
async fn signed(client: &reqwest::Client, admin_url: &str, body: &[u8]) -> Map<String, Value> {
    let v: Value = client
        .post(format!("{admin_url}/_sandbox/sign"))
        .body(body.to_vec())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    v["headers"]
        .as_object()
        .cloned()
        .unwrap_or_else(|| panic!("{v}"))
}

/// POSTs `body` with `headers`; the status and the JSON answer.
async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &Map<String, Value>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = client.post(url).body(body);
    for (k, v) in headers {
        request = request.header(k.as_str(), v.as_str().unwrap_or_default());
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A recorded delivery of the referral's creation, once it has headers.
async fn delivery(admin: &Admin, referral: &str) -> Value {
    wait_for("the delivery of referral-created", T, || async {
        let all = admin.get("deliveries").await?;
        Ok(all.as_array().into_iter().flatten().find_map(|d| {
            let mine = d["event"] == "referral-created"
                && d["resource_uri"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(referral))
                && d["state"] == "delivered"
                && d["headers"].is_object();
            mine.then(|| d.clone())
        }))
    })
    .await
}

#[test]
fn bad_webhooks_are_refused_with_their_status_and_store_nothing() {
    let _serial = serial();
    let Pair {
        serve,
        sandbox,
        project: _project,
        state,
        log: _log,
        dir: _dir,
    } = Pair::start(Crm::Dynamics365, as_shipped, "200ms");
    runtime().block_on(async {
        let admin = sandbox.admin();
        let client = http();
        let url = serve.webhook_url.as_str();
        let referral = create_referral(&admin, "Bad webhooks").await;
        let real = delivery(&admin, &referral).await;
        settle(&admin, &serve, QUIET, T).await;
        let body = serde_json::to_vec(&real["body"]).unwrap_or_else(|e| panic!("{e}"));
        let headers = real["headers"].as_object().cloned().unwrap_or_default();
        let stored = counts(&state);
        let seq = last_write_seq(&admin).await;

        // The real delivery is fine: a duplicate.
        let (status, answer) = post(&client, url, &headers, body.clone()).await;
        assert_eq!(
            (status, &answer["duplicate"]),
            (200, &json!(true)),
            "{answer}"
        );

        let mut refused = Vec::new();
        // One byte changed: the signature no longer matches.
        let mut tampered = body.clone();
        let at = tampered
            .iter()
            .rposition(|b| b.is_ascii_hexdigit())
            .unwrap_or_else(|| panic!("no hex digit in the body"));
        tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
        let (status, answer) = post(&client, url, &headers, tampered).await;
        assert_eq!(status, 401, "tampered: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("does not match")),
            "{answer}"
        );
        refused.push("tampered");

        // Certificate URLs off the allow-list: refused before any fetch (the
        // reason is the host, not a failed download).
        for cert in [
            "https://evil.example/cert.cer",
            "http://127.0.0.1:1/_sandbox/certificate.cer",
        ] {
            let mut h = headers.clone();
            h.insert("x-ms-certificate-url".into(), json!(cert));
            let (status, answer) = post(&client, url, &h, body.clone()).await;
            assert_eq!(status, 401, "{cert}: {answer}");
            let reason = answer["error"].as_str().unwrap_or_default();
            assert!(
                reason.contains("not on an allowed host") && !reason.contains("fetch"),
                "{cert}: {answer}"
            );
            refused.push("certificate host");
        }

        // No signature at all.
        let mut h = headers.clone();
        h.remove("authorization");
        let (status, answer) = post(&client, url, &h, body.clone()).await;
        assert_eq!(status, 401, "unsigned: {answer}");
        refused.push("unsigned");

        // Validly signed, but malformed.
        let foreign = json!({
            "EventName": "referral-updated",
            "ResourceUri": format!("https://evil.example/engagements/v1/referrals/{referral}"),
            "ResourceName": "referral",
            "AuditUri": null,
            "ResourceChangeUtcDate": "2030-01-01T00:00:00.0000000+00:00",
        })
        .to_string();
        for (what, bad, reason) in [
            (
                "not JSON",
                "{\"EventName\": \"referral-updated\",".to_string(),
                "not JSON",
            ),
            (
                "no EventName",
                json!({"ResourceUri": real["body"]["ResourceUri"]}).to_string(),
                "EventName",
            ),
            ("foreign ResourceUri", foreign, "evil.example"),
        ] {
            let h = signed(&client, &sandbox.admin_url, bad.as_bytes()).await;
            let (status, answer) = post(&client, url, &h, bad.into_bytes()).await;
            assert_eq!(status, 400, "{what}: {answer}");
            assert!(
                answer["error"].as_str().is_some_and(|e| e.contains(reason)),
                "{what}: {answer}"
            );
            refused.push(what);
        }

        // Not JSON by its content type.
        let mut h = headers.clone();
        h.insert("content-type".into(), json!("text/plain"));
        let (status, answer) = post(&client, url, &h, body.clone()).await;
        assert_eq!(status, 415, "{answer}");
        refused.push("content type");

        // Larger than server.max_body_bytes (65536 in the shipped cosync.yaml).
        let mut big =
            json!({"EventName": "referral-updated", "ResourceUri": real["body"]["ResourceUri"]});
        big["Padding"] = json!("x".repeat(70_000));
        let big = big.to_string().into_bytes();
        let h = signed(&client, &sandbox.admin_url, &big).await;
        let (status, _) = post(&client, url, &h, big).await;
        assert_eq!(status, 413);

        assert_eq!(counts(&state), stored, "nothing stored");
        let late = writes_since(&admin, seq).await;
        assert!(late.is_empty(), "{:#?}", describe(&late));
        let metrics = metrics_text(&serve).await;
        assert_eq!(
            metric(&metrics, "cosync_webhooks_refused_total"),
            refused.len() as f64,
            "{refused:?}\n{metrics}"
        );

        // The control: a well-formed body signed the same way is taken.
        let mut fine = real["body"].clone();
        fine["EventName"] = json!("referral-updated");
        fine["ResourceChangeUtcDate"] = json!("2030-01-01T00:00:00.0000000+00:00");
        let fine = fine.to_string().into_bytes();
        let h = signed(&client, &sandbox.admin_url, &fine).await;
        let (status, answer) = post(&client, url, &h, fine).await;
        assert_eq!(status, 202, "{answer}");
        settle(&admin, &serve, QUIET, T).await;
        assert_eq!(counts(&state).total(), stored.total() + 1);
    });
}
