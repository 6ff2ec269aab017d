//! `--state FILE`: records, registration, counters and tokens survive a restart.

use reqwest::Method;
use serde_json::json;

use crate::support::{Env, TestResult, config, referral};

#[tokio::test]
async fn a_restarted_sandbox_keeps_its_records() -> TestResult {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("sandbox.db");
    let mut first_config = config();
    first_config.state_file = Some(state.clone());
    let env = Env::start_with(first_config).await?;
    let pc = env.pc_token().await?;
    let created = env.create_referral(&pc, &referral("Durable")).await?;
    let referral_id = created["id"].as_str().unwrap_or_default().to_owned();
    let hooks = format!(
        "{}/webhooks/v1/registration",
        env.urls.partner_center_webhooks
    );
    let register =
        json!({"WebhookUrl": "https://example.com/hook", "WebhookEvents": ["referral-updated"]});
    env.call(Method::POST, &hooks, Some(&pc), Some(&register), &[])
        .await?;
    let dv = env.dv_token().await?;
    let account = env
        .call(
            Method::POST,
            &env.dv("accounts"),
            Some(&dv),
            Some(&json!({"name": "Durable account"})),
            &[("prefer", "return=representation")],
        )
        .await?;
    let account_id = account.json["accountid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let version = account.json["@odata.etag"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let sf = env.sf_token().await?;
    let sf_created = env
        .call(
            Method::POST,
            &env.sf("sobjects/Account"),
            Some(&sf),
            Some(&json!({"Name": "Durable SF"})),
            &[],
        )
        .await?;
    let sf_id = sf_created.json["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let certificate = env
        .http
        .get(env.admin("certificate.pem"))
        .send()
        .await?
        .text()
        .await?;
    env.handle.shutdown().await;

    let mut second_config = config();
    second_config.state_file = Some(state.clone());
    let env = Env::start_with(second_config).await?;
    let hooks = format!(
        "{}/webhooks/v1/registration",
        env.urls.partner_center_webhooks
    );
    let fetched = env
        .get(&format!("{}/{referral_id}", env.referrals()), &pc)
        .await?;
    assert_eq!(
        fetched.status, 200,
        "the old token and the referral survive: {}",
        fetched.text
    );
    assert_eq!(fetched.json["name"], "Durable");
    assert_eq!(fetched.json["eTag"], created["eTag"]);
    assert_eq!(
        env.get(&hooks, &pc).await?.json["WebhookUrl"],
        "https://example.com/hook"
    );
    let row = env
        .get(&env.dv(&format!("accounts({account_id})")), &dv)
        .await?;
    assert_eq!(row.json["name"], "Durable account");
    assert_eq!(row.json["@odata.etag"], version.as_str());
    let currencies = env.get(&env.dv("transactioncurrencies"), &dv).await?;
    assert_eq!(
        currencies.json["value"].as_array().map(Vec::len),
        Some(5),
        "not seeded twice"
    );
    let updated = env
        .call(
            Method::PATCH,
            &env.dv(&format!("accounts({account_id})")),
            Some(&dv),
            Some(&json!({"name": "v2"})),
            &[("prefer", "return=representation")],
        )
        .await?;
    assert_ne!(
        updated.json["@odata.etag"],
        version.as_str(),
        "versions keep increasing"
    );
    let record = env
        .get(&env.sf(&format!("sobjects/Account/{sf_id}")), &sf)
        .await?;
    assert_eq!(record.json["Name"], "Durable SF");
    let next = env
        .call(
            Method::POST,
            &env.sf("sobjects/Account"),
            Some(&sf),
            Some(&json!({"Name": "Next"})),
            &[],
        )
        .await?;
    assert_ne!(next.json["id"], sf_id.as_str(), "ids are not reused");
    let same_certificate = env
        .http
        .get(env.admin("certificate.pem"))
        .send()
        .await?
        .text()
        .await?;
    assert!(!same_certificate.is_empty() && !certificate.is_empty());
    env.handle.shutdown().await;
    Ok(())
}
