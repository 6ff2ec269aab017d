//! Bad input: malformed JSON, wrong content types, oversize bodies, never a panic, and
//! state unchanged after a refused request.

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Env, Resp, TestResult, config, referral};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn raw(
    env: &Env,
    method: Method,
    url: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> Result<Resp> {
    let response = env
        .http
        .request(method, url)
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await?;
    let json = serde_json::from_str(&text).unwrap_or_default();
    Ok(Resp {
        status,
        headers,
        json,
        text,
    })
}

#[tokio::test]
async fn malformed_json_gets_400_in_each_services_format() -> TestResult {
    let env = Env::start().await?;
    let pc = env.pc_token().await?;
    let dv = env.dv_token().await?;
    let sf = env.sf_token().await?;
    for body in ["{\"name\": ", "", "[1, 2", "\u{0}"] {
        let resp = raw(
            &env,
            Method::POST,
            &env.referrals(),
            &pc,
            "application/json",
            body,
        )
        .await?;
        assert_eq!(
            (resp.status, resp.json["error"]["code"].as_str()),
            (400, Some("invalidRequest")),
            "{body:?}"
        );
        let resp = raw(
            &env,
            Method::POST,
            &env.dv("accounts"),
            &dv,
            "application/json",
            body,
        )
        .await?;
        assert_eq!(resp.status, 400, "{body:?}");
        assert!(resp.json["error"]["code"].is_string());
        let resp = raw(
            &env,
            Method::POST,
            &env.sf("sobjects/Account"),
            &sf,
            "application/json",
            body,
        )
        .await?;
        assert_eq!(
            (resp.status, resp.json[0]["errorCode"].as_str()),
            (400, Some("JSON_PARSER_ERROR")),
            "{body:?}"
        );
    }
    // JSON of the wrong shape.
    let array = raw(
        &env,
        Method::POST,
        &env.referrals(),
        &pc,
        "application/json",
        "[]",
    )
    .await?;
    assert_eq!(array.status, 400);
    let patch_object = raw(
        &env,
        Method::PATCH,
        &format!("{}/x", env.referrals()),
        &pc,
        "application/json",
        "{}",
    )
    .await?;
    assert!(patch_object.status == 400 || patch_object.status == 404);
    let wrong_types = env
        .call(
            Method::POST,
            &env.referrals(),
            Some(&pc),
            Some(&json!({"name": 5})),
            &[],
        )
        .await?;
    assert_eq!(wrong_types.status, 400);
    let unknown = env
        .call(
            Method::POST,
            &env.referrals(),
            Some(&pc),
            Some(&json!({"name": "x", "colour": "red"})),
            &[],
        )
        .await?;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.json["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("colour")
    );
    let list = env.get(&env.referrals(), &pc).await?;
    assert_eq!(list.json["@odata.count"], 0, "nothing was created");
    Ok(())
}

#[tokio::test]
async fn wrong_content_types_get_415() -> TestResult {
    let env = Env::start().await?;
    let pc = env.pc_token().await?;
    let dv = env.dv_token().await?;
    let sf = env.sf_token().await?;
    let body = referral("x").to_string();
    let resp = raw(
        &env,
        Method::POST,
        &env.referrals(),
        &pc,
        "text/plain",
        &body,
    )
    .await?;
    assert_eq!(resp.status, 415);
    assert_eq!(resp.json["error"]["code"], "invalidRequest");
    let resp = raw(
        &env,
        Method::POST,
        &env.dv("accounts"),
        &dv,
        "application/xml",
        "{\"name\":\"x\"}",
    )
    .await?;
    assert_eq!(resp.status, 415);
    let resp = raw(
        &env,
        Method::POST,
        &env.sf("sobjects/Account"),
        &sf,
        "text/csv",
        "{\"Name\":\"x\"}",
    )
    .await?;
    assert_eq!(
        (resp.status, resp.json[0]["errorCode"].as_str()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE"))
    );
    let token_url = format!("{}/common/oauth2/v2.0/token", env.urls.login);
    let json_token = env
        .http
        .post(token_url)
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await?;
    assert_eq!(
        json_token.status().as_u16(),
        400,
        "token endpoints want a form"
    );
    Ok(())
}

#[tokio::test]
async fn oversize_bodies_get_413_and_change_nothing() -> TestResult {
    let mut config = config();
    config.max_body_bytes = 1024;
    let env = Env::start_with(config).await?;
    let pc = env.pc_token().await?;
    let dv = env.dv_token().await?;
    let sf = env.sf_token().await?;
    let mut big = referral("Big");
    big["details"]["notes"] = json!("x".repeat(4096));
    let resp = env
        .call(Method::POST, &env.referrals(), Some(&pc), Some(&big), &[])
        .await?;
    assert_eq!(resp.status, 413);
    assert_eq!(resp.json["error"]["code"], "invalidRequest");
    let resp = env
        .call(
            Method::POST,
            &env.dv("accounts"),
            Some(&dv),
            Some(&json!({"name": "x".repeat(2048)})),
            &[],
        )
        .await?;
    assert_eq!(resp.status, 413);
    assert!(resp.json["error"].is_object());
    let resp = env
        .call(
            Method::POST,
            &env.sf("sobjects/Account"),
            Some(&sf),
            Some(&json!({"Name": "x".repeat(2048)})),
            &[],
        )
        .await?;
    assert_eq!(resp.status, 413);
    assert!(resp.json.is_array());
    let list = env.get(&env.referrals(), &pc).await?;
    assert_eq!(list.json["@odata.count"], 0);
    // A chunked body without Content-Length is cut off too.
    let address = env.urls.dataverse.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await?;
    let head = format!(
        "POST /api/data/v9.2/accounts HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {dv}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    for _ in 0..4 {
        stream
            .write_all(format!("200\r\n{}\r\n", " ".repeat(512)).as_bytes())
            .await?;
    }
    stream.write_all(b"0\r\n\r\n").await?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // The sandbox still answers.
    assert_eq!(env.get(&env.referrals(), &pc).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_services_format() -> TestResult {
    let env = Env::start().await?;
    let pc = env.pc_token().await?;
    let resp = env
        .get(
            &format!("{}/v1.0/engagements/nothing", env.urls.partner_center),
            &pc,
        )
        .await?;
    assert_eq!(
        (resp.status, resp.json["error"]["code"].as_str()),
        (404, Some("itemNotFound"))
    );
    let resp = env
        .call(Method::DELETE, &env.referrals(), Some(&pc), None, &[])
        .await?;
    assert_eq!(resp.status, 405);
    let sf = env.sf_token().await?;
    let resp = env.get(&env.sf("nothing/here"), &sf).await?;
    assert_eq!(
        (resp.status, resp.json[0]["errorCode"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let resp = env
        .get(
            &format!("{}/services/data/v9.0/sobjects", env.urls.salesforce),
            &sf,
        )
        .await?;
    assert_eq!(resp.status, 404);
    let dv = env.dv_token().await?;
    let resp = env.get(&env.dv("opportunities(not-a-guid)"), &dv).await?;
    assert_eq!(resp.status, 400);
    let resp = env
        .get(
            &format!("{}/api/data/v8.0/accounts", env.urls.dataverse),
            &dv,
        )
        .await?;
    assert_eq!(resp.status, 404);
    Ok(())
}
