//! Admin API: seed, reset, request log, writes, user edits, settings, and a router
//! tested without a socket.

use std::path::Path;

use cosync::sandbox::{self, Sandbox, SandboxConfig, SandboxUrls};
use reqwest::Method;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{Env, TestResult, config, referral};

fn seed_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sandbox/seed")
}

#[tokio::test]
async fn seed_files_load_at_start_and_reset_restores_them() -> TestResult {
    let mut config = config();
    config.seed_dir = Some(seed_dir());
    let env = Env::start_with(config).await?;
    let token = env.pc_token().await?;
    let seeded = env
        .get(
            &format!("{}/5a4d5eed-0000-4000-8000-000000000001", env.referrals()),
            &token,
        )
        .await?;
    assert_eq!(seeded.status, 200, "{}", seeded.text);
    assert_eq!(seeded.json["name"], "Fabrikam cloud migration");
    assert_eq!(seeded.json["status"], "New");
    let dv = env.dv_token().await?;
    let account = env
        .get(
            &env.dv("accounts(5a4d5eed-0000-4000-8000-0000000000a1)"),
            &dv,
        )
        .await?;
    assert_eq!(account.json["name"], "Fabrikam");
    let opportunity = env
        .get(
            &env.dv("opportunities(5a4d5eed-0000-4000-8000-0000000000b1)"),
            &dv,
        )
        .await?;
    assert_eq!(
        opportunity.json["_customerid_value"],
        "5a4d5eed-0000-4000-8000-0000000000a1"
    );
    let sf = env.sf_token().await?;
    let sf_account = env
        .get(&env.sf("sobjects/Account/0015g000000SeedAAC"), &sf)
        .await?;
    assert_eq!(sf_account.json["Name"], "Fabrikam", "{}", sf_account.text);
    // Changes, then reset.
    env.create_referral(&token, &referral("Transient")).await?;
    let reset = env
        .call(Method::POST, &env.admin("reset"), None, None, &[])
        .await?;
    assert_eq!(reset.status, 204);
    let list = env.get(&env.referrals(), &token).await?;
    assert_eq!(
        list.json["@odata.count"], 1,
        "only the seeded referral is left"
    );
    let currencies = env.get(&env.dv("transactioncurrencies"), &dv).await?;
    assert_eq!(currencies.json["value"].as_array().map(Vec::len), Some(5));
    // Seeding through the API, all or nothing.
    let bad = json!({"dataverse": {"accounts": [{"name": "ok"}, {"bogus": 1}]}});
    let refused = env
        .call(Method::POST, &env.admin("seed"), None, Some(&bad), &[])
        .await?;
    assert_eq!(refused.status, 400);
    let accounts = env
        .get(&env.dv("accounts?$filter=name%20eq%20'ok'"), &dv)
        .await?;
    assert_eq!(accounts.json["value"], json!([]));
    let good = json!({"salesforce": {"Contact": [{"LastName": "Seeded"}]}, "partner_center": {"referrals": [{"name": "Another"}]}});
    let applied = env
        .call(Method::POST, &env.admin("seed"), None, Some(&good), &[])
        .await?;
    assert_eq!(
        applied.json,
        json!({"referrals": 1, "dataverse": 0, "salesforce": 1})
    );
    Ok(())
}

#[tokio::test]
async fn seeds_describe_existing_data_leniently_where_the_api_is_strict() -> TestResult {
    let env = Env::start().await?;
    let seed = json!({
        "partner_center": {"referrals": [{"name": "Future code", "inviteContext": {"assistanceRequestCode": "SomethingNew"}}]},
        "dataverse": {"opportunities": [{
            "name": "Already won", "statecode": 1, "statuscode": 3,
            "customerid@odata.bind": format!("/accounts({})", uuid::Uuid::new_v4()),
        }]},
        "salesforce": {"Opportunity": [{
            "Name": "Seeded", "StageName": "Closed Won", "CloseDate": "2026-01-01", "IsWon": true,
            "OwnerId": "005Hs00000Ab1CdIAJ", "How_can_Microsoft_help__c": "Architecture review",
            "SystemModstamp": "2026-03-09T11:30:00.000+0000",
        }]},
    });
    let applied = env
        .call(Method::POST, &env.admin("seed"), None, Some(&seed), &[])
        .await?;
    assert_eq!(applied.status, 200, "{}", applied.text);
    let sf = env.sf_token().await?;
    let seeded = env
        .get(
            &env.sf("query?q=SELECT%20Id,SystemModstamp,IsWon%20FROM%20Opportunity"),
            &sf,
        )
        .await?;
    assert_eq!(
        seeded.json["records"][0]["SystemModstamp"],
        "2026-03-09T11:30:00.000+0000"
    );
    assert_eq!(seeded.json["records"][0]["IsWon"], true);
    let refused = env
        .call(Method::POST, &env.sf("sobjects/Opportunity"), Some(&sf), Some(&json!({"Name": "x", "StageName": "Prospecting", "CloseDate": "2026-01-01", "How_can_Microsoft_help__c": "Architecture review"})), &[])
        .await?;
    assert_eq!(refused.status, 400, "the API keeps the picklist restricted");
    let dv = env.dv_token().await?;
    let won = env
        .get(
            &env.dv("opportunities?$filter=statecode%20eq%201&$select=name"),
            &dv,
        )
        .await?;
    assert_eq!(won.json["value"][0]["name"], "Already won");
    let pc = env.pc_token().await?;
    let future = env.get(&env.referrals(), &pc).await?;
    assert_eq!(
        future.json["value"][0]["inviteContext"]["assistanceRequestCode"],
        "SomethingNew"
    );
    Ok(())
}

#[tokio::test]
async fn the_request_log_lists_filters_and_clears_and_writes_show_what_was_written() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    let body = json!({"name": "Logged"});
    env.call(
        Method::POST,
        &env.dv("accounts"),
        Some(&token),
        Some(&body),
        &[],
    )
    .await?;
    env.get(&env.dv("accounts"), &token).await?;
    let all: Value = env
        .http
        .get(env.admin("requests"))
        .send()
        .await?
        .json()
        .await?;
    let entries = all.as_array().cloned().unwrap_or_default();
    assert!(
        entries.iter().any(|e| e["service"] == "login"),
        "token calls are logged"
    );
    let login = entries
        .iter()
        .find(|e| e["service"] == "login")
        .cloned()
        .unwrap_or_default();
    assert!(
        !login.to_string().contains(sandbox::CLIENT_SECRET),
        "secrets are redacted"
    );
    let dataverse: Value = env
        .http
        .get(env.admin("requests?service=dataverse&method=GET"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(dataverse.as_array().map(Vec::len), Some(1));
    assert_eq!(dataverse[0]["status"], 200);
    let writes: Value = env
        .http
        .get(env.admin("writes"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(writes.as_array().map(Vec::len), Some(1));
    assert_eq!(writes[0]["method"], "POST");
    assert_eq!(writes[0]["body"], body);
    assert_eq!(writes[0]["status"], 204);
    env.call(Method::DELETE, &env.admin("requests"), None, None, &[])
        .await?;
    let cleared: Value = env
        .http
        .get(env.admin("requests"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(cleared, json!([]));
    let failing = env
        .call(
            Method::POST,
            &env.dv("accounts"),
            Some(&token),
            Some(&json!({"bogus": 1})),
            &[],
        )
        .await?;
    assert_eq!(failing.status, 400);
    let errors: Value = env
        .http
        .get(env.admin("requests?status=400"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        errors[0]["error"]["error"]["message"].is_string(),
        "{errors}"
    );
    Ok(())
}

#[tokio::test]
async fn user_edits_move_change_tracking_and_modstamps_like_real_edits() -> TestResult {
    let env = Env::start().await?;
    let dv = env.dv_token().await?;
    let created = env
        .call(
            Method::POST,
            &env.admin("dataverse/opportunities"),
            None,
            Some(&json!({"name": "Seller edit"})),
            &[("prefer", "return=representation")],
        )
        .await?;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["opportunityid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        created.json["_modifiedby_value"], "5a4d0004-c05e-4c0a-8d1e-5a4db0c05e01",
        "edits by the sandbox user"
    );
    let initial = env
        .call(
            Method::GET,
            &env.dv("opportunities?$select=name"),
            Some(&dv),
            None,
            &[("prefer", "odata.track-changes")],
        )
        .await?;
    let delta = initial.json["@odata.deltaLink"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let edit = env
        .call(
            Method::PATCH,
            &env.admin(&format!("dataverse/opportunities/{id}")),
            None,
            Some(&json!({"name": "Edited by a seller"})),
            &[],
        )
        .await?;
    assert_eq!(edit.status, 204, "{}", edit.text);
    let changes = env.get(&delta, &dv).await?;
    assert_eq!(changes.json["value"][0]["name"], "Edited by a seller");
    // Salesforce.
    let sf = env.sf_token().await?;
    let record = env
        .call(
            Method::POST,
            &env.admin("salesforce/Opportunity"),
            None,
            Some(&json!({"Name": "SF", "StageName": "Prospecting", "CloseDate": "2027-01-01"})),
            &[],
        )
        .await?;
    let sf_id = record.json["id"].as_str().unwrap_or_default().to_owned();
    let before = env
        .get(&env.sf(&format!("sobjects/Opportunity/{sf_id}")), &sf)
        .await?;
    let edit = env
        .call(
            Method::PATCH,
            &env.admin(&format!("salesforce/Opportunity/{sf_id}")),
            None,
            Some(&json!({"StageName": "Qualification"})),
            &[],
        )
        .await?;
    assert_eq!(edit.status, 204, "{}", edit.text);
    let after = env
        .get(&env.sf(&format!("sobjects/Opportunity/{sf_id}")), &sf)
        .await?;
    assert!(after.json["SystemModstamp"].as_str() > before.json["SystemModstamp"].as_str());
    assert_eq!(after.json["LastModifiedById"], "0055g00000CoSyUAAV");
    let list: Value = env
        .http
        .get(env.admin("salesforce/Opportunity"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    Ok(())
}

#[tokio::test]
async fn settings_read_and_merge() -> TestResult {
    let env = Env::start().await?;
    let settings: Value = env
        .http
        .get(env.admin("settings"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(settings["delivery"]["max_attempts"], 10);
    let changed = env
        .call(
            Method::PATCH,
            &env.admin("settings"),
            None,
            Some(&json!({"delivery": {"max_attempts": 4}, "partner_center_page_size": 7})),
            &[],
        )
        .await?;
    assert_eq!(changed.json["delivery"]["max_attempts"], 4);
    assert_eq!(changed.json["delivery"]["initial_backoff_ms"], 10);
    assert_eq!(changed.json["partner_center_page_size"], 7);
    let bad = env
        .call(
            Method::PATCH,
            &env.admin("settings"),
            None,
            Some(&json!({"nope": 1})),
            &[],
        )
        .await?;
    assert_eq!(bad.status, 400);
    let info: Value = env.http.get(env.admin("")).send().await?.json().await?;
    assert_eq!(info["urls"]["dataverse"], env.urls.dataverse.as_str());
    assert_eq!(info["credentials"]["client_id"], sandbox::CLIENT_ID);
    Ok(())
}

#[tokio::test]
async fn routers_answer_without_a_socket() -> TestResult {
    let urls = SandboxUrls {
        partner_center: "http://pc.test".into(),
        partner_center_webhooks: "http://hooks.test".into(),
        dataverse: "http://dv.test".into(),
        salesforce: "http://sf.test".into(),
        login: "http://login.test".into(),
        admin: "http://admin.test".into(),
    };
    let state = Sandbox::detached(SandboxConfig::default(), urls).await?;
    let request = axum::http::Request::builder()
        .uri("/v1.0/engagements/referrals")
        .body(axum::body::Body::empty())?;
    let response = sandbox::partner_center::router(state.clone())
        .oneshot(request)
        .await?;
    assert_eq!(response.status(), 401);
    let request = axum::http::Request::builder()
        .uri("/_sandbox")
        .body(axum::body::Body::empty())?;
    let response = sandbox::admin_router(state).oneshot(request).await?;
    assert_eq!(response.status(), 200);
    Ok(())
}
