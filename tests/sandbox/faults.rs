//! Fault injection: 429 with Retry-After, 5xx, dropped connections, latency, rates.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Env, TestResult};

async fn add(env: &Env, rule: Value) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let resp = env
        .call(Method::POST, &env.admin("faults"), None, Some(&rule), &[])
        .await?;
    if resp.status != 200 {
        return Err(format!("fault: {} {}", resp.status, resp.text).into());
    }
    Ok(resp.json)
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after_for_the_given_count() -> TestResult {
    let env = Env::start().await?;
    let token = env.pc_token().await?;
    add(&env, json!({"service": "partner_center", "path_prefix": "/v1.0/engagements/referrals", "kind": "throttle", "retry_after": 3, "count": 2})).await?;
    for _ in 0..2 {
        let throttled = env.get(&env.referrals(), &token).await?;
        assert_eq!(throttled.status, 429);
        assert_eq!(throttled.header("retry-after"), "3");
        assert!(
            throttled.json["error"]["code"].is_string(),
            "{}",
            throttled.text
        );
    }
    assert_eq!(
        env.get(&env.referrals(), &token).await?.status,
        200,
        "the rule is used up"
    );
    let log: Value = env
        .http
        .get(env.admin("requests?service=partner_center&status=429"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(log.as_array().map(Vec::len), Some(2));
    assert!(
        log[0]["fault"]
            .as_str()
            .unwrap_or("")
            .starts_with("throttle")
    );
    Ok(())
}

#[tokio::test]
async fn status_faults_answer_in_the_services_error_format() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    add(&env, json!({"service": "dataverse", "method": "GET", "kind": "status", "code": 503, "retry_after": 1})).await?;
    let unavailable = env.get(&env.dv("accounts"), &token).await?;
    assert_eq!(unavailable.status, 503);
    assert_eq!(unavailable.header("retry-after"), "1");
    assert!(unavailable.json["error"]["code"].is_string());
    let write = env
        .call(
            Method::POST,
            &env.dv("accounts"),
            Some(&token),
            Some(&json!({"name": "x"})),
            &[],
        )
        .await?;
    assert_eq!(write.status, 204, "other methods are not affected");
    add(
        &env,
        json!({"service": "dataverse", "kind": "throttle", "retry_after": 5}),
    )
    .await?;
    let rules: Value = env
        .http
        .get(env.admin("faults"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(rules.as_array().map(Vec::len), Some(2));
    assert_eq!(
        env.call(Method::DELETE, &env.admin("faults"), None, None, &[])
            .await?
            .status,
        204
    );
    assert_eq!(env.get(&env.dv("accounts"), &token).await?.status, 200);
    let sf = env.sf_token().await?;
    let id = add(
        &env,
        json!({"service": "salesforce", "kind": "status", "code": 500}),
    )
    .await?
    .pointer("/0/id")
    .and_then(Value::as_str)
    .unwrap_or_default()
    .to_owned();
    let failed = env.get(&env.sf("limits"), &sf).await?;
    assert_eq!(failed.status, 500);
    assert_eq!(failed.json[0]["errorCode"], "UNKNOWN_EXCEPTION");
    assert_eq!(
        env.call(
            Method::DELETE,
            &env.admin(&format!("faults/{id}")),
            None,
            None,
            &[]
        )
        .await?
        .status,
        204
    );
    let bad = env
        .call(
            Method::POST,
            &env.admin("faults"),
            None,
            Some(&json!({"kind": "status", "code": 200})),
            &[],
        )
        .await?;
    assert_eq!(bad.status, 400);
    let unknown = env
        .call(
            Method::POST,
            &env.admin("faults"),
            None,
            Some(&json!({"kind": "explode"})),
            &[],
        )
        .await?;
    assert_eq!(unknown.status, 400);
    Ok(())
}

#[tokio::test]
async fn drop_closes_the_connection_without_a_response() -> TestResult {
    let env = Env::start().await?;
    let token = env.pc_token().await?;
    add(
        &env,
        json!({"service": "partner_center", "kind": "drop", "count": 2}),
    )
    .await?;
    // Raw TCP: not a single byte comes back.
    let address = env
        .urls
        .partner_center
        .trim_start_matches("http://")
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await?;
    let request = format!(
        "GET /v1.0/engagements/referrals HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the connection must close");
    assert!(
        received.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&received)
    );
    // reqwest sees a transport error.
    let outcome = env
        .http
        .get(env.referrals())
        .bearer_auth(&token)
        .send()
        .await;
    assert!(outcome.is_err());
    assert_eq!(env.get(&env.referrals(), &token).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn latency_delays_requests_and_rate_zero_never_applies() -> TestResult {
    let env = Env::start().await?;
    let token = env.sf_token().await?;
    add(&env, json!({"service": "salesforce", "path_prefix": "/services/data/v62.0/limits", "kind": "latency", "ms": 300})).await?;
    add(&env, json!({"service": "salesforce", "path_prefix": "/services/data/v62.0/sobjects", "kind": "status", "code": 503, "rate": 0.0})).await?;
    let started = Instant::now();
    assert_eq!(env.get(&env.sf("limits"), &token).await?.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(env.get(&env.sf("sobjects"), &token).await?.status, 200);
    }
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "unaffected paths are fast"
    );
    Ok(())
}
