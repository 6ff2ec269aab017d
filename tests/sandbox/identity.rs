//! Token endpoints and bearer checks.

use cosync::sandbox;
use reqwest::Method;
use serde_json::json;

use crate::support::{Env, TestResult, config};

#[tokio::test]
async fn data_calls_without_a_valid_token_get_401_in_each_services_format() -> TestResult {
    let env = Env::start().await?;
    let pc = env
        .call(Method::GET, &env.referrals(), None, None, &[])
        .await?;
    assert_eq!(pc.status, 401);
    assert_eq!(pc.json["error"]["code"], "unauthenticated");
    assert!(pc.header("www-authenticate").starts_with("Bearer"));
    let bogus = env.get(&env.referrals(), "not-a-token").await?;
    assert_eq!(bogus.status, 401);
    let dv = env
        .call(Method::GET, &env.dv("opportunities"), None, None, &[])
        .await?;
    assert_eq!(dv.status, 401);
    assert!(dv.json["error"].is_object(), "{}", dv.text);
    let sf = env
        .call(Method::GET, &env.sf("sobjects"), None, None, &[])
        .await?;
    assert_eq!(sf.status, 401);
    assert_eq!(
        sf.json,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    let hooks = format!(
        "{}/webhooks/v1/registration",
        env.urls.partner_center_webhooks
    );
    assert_eq!(
        env.call(Method::GET, &hooks, None, None, &[]).await?.status,
        401
    );
    // A Salesforce token is not a Microsoft token.
    let sf_token = env.sf_token().await?;
    assert_eq!(env.get(&env.referrals(), &sf_token).await?.status, 401);
    Ok(())
}

#[tokio::test]
async fn tokens_expire_after_the_configured_lifetime_and_refresh() -> TestResult {
    let mut config = config();
    config.settings.token_lifetime_secs = 1;
    let env = Env::start_with(config).await?;
    let url = format!("{}/common/oauth2/v2.0/token", env.urls.login);
    let issued = env
        .form(
            &url,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", sandbox::CLIENT_ID),
                ("refresh_token", sandbox::REFRESH_TOKEN),
                (
                    "scope",
                    "https://api.partner.microsoft.com/.default offline_access",
                ),
            ],
        )
        .await?;
    assert_eq!(issued.status, 200, "{}", issued.text);
    assert_eq!(issued.json["expires_in"], 1);
    assert_eq!(issued.json["token_type"], "Bearer");
    let access = issued.json["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rotated = issued.json["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(env.get(&env.referrals(), &access).await?.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let expired = env.get(&env.referrals(), &access).await?;
    assert_eq!(expired.status, 401);
    assert!(expired.text.contains("expired"), "{}", expired.text);
    // The rotated refresh token keeps working.
    let again = env
        .form(
            &url,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", sandbox::CLIENT_ID),
                ("refresh_token", &rotated),
            ],
        )
        .await?;
    let fresh = again.json["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(env.get(&env.referrals(), &fresh).await?.status, 200);
    // The admin API can expire every token at once.
    let expire = env
        .call(Method::POST, &env.admin("tokens/expire"), None, None, &[])
        .await?;
    assert!(expire.json["expired"].as_u64().unwrap_or(0) >= 1);
    assert_eq!(env.get(&env.referrals(), &fresh).await?.status, 401);
    Ok(())
}

#[tokio::test]
async fn microsoft_token_errors_follow_the_identity_platform() -> TestResult {
    let env = Env::start().await?;
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        env.urls.login,
        sandbox::TENANT_ID
    );
    let base = [
        ("client_id", sandbox::CLIENT_ID),
        ("scope", "https://x.crm.dynamics.com/.default"),
    ];
    let wrong = env
        .form(
            &url,
            &[
                base[0],
                base[1],
                ("grant_type", "client_credentials"),
                ("client_secret", "nope"),
            ],
        )
        .await?;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json["error"], "invalid_client");
    assert!(
        wrong.json["error_description"]
            .as_str()
            .unwrap_or("")
            .starts_with("AADSTS7000215")
    );
    let grant = env
        .form(&url, &[base[0], ("grant_type", "authorization_magic")])
        .await?;
    assert_eq!(
        (grant.status, grant.json["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let scope = env
        .form(
            &url,
            &[
                base[0],
                ("grant_type", "client_credentials"),
                ("client_secret", sandbox::CLIENT_SECRET),
                ("scope", "https://x.crm.dynamics.com/user_impersonation"),
            ],
        )
        .await?;
    assert_eq!(
        (scope.status, scope.json["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let refresh = env
        .form(
            &url,
            &[
                base[0],
                ("grant_type", "refresh_token"),
                ("refresh_token", "stale"),
            ],
        )
        .await?;
    assert_eq!(
        (refresh.status, refresh.json["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // v1 endpoint: `resource`, string lifetimes.
    let v1 = env
        .form(
            &format!("{}/common/oauth2/token", env.urls.login),
            &[
                ("grant_type", "password"),
                ("client_id", sandbox::CLIENT_ID),
                ("username", sandbox::USERNAME),
                ("password", sandbox::PASSWORD),
                ("resource", "https://api.partner.microsoft.com"),
                ("scope", "openid"),
            ],
        )
        .await?;
    assert_eq!(v1.status, 200, "{}", v1.text);
    assert!(v1.json["expires_in"].is_string());
    assert_eq!(v1.json["resource"], "https://api.partner.microsoft.com");
    assert!(v1.json["refresh_token"].is_string());
    Ok(())
}

#[tokio::test]
async fn salesforce_token_names_the_instance_url() -> TestResult {
    let env = Env::start().await?;
    let url = format!("{}/services/oauth2/token", env.urls.salesforce);
    let resp = env
        .form(
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", sandbox::SALESFORCE_CLIENT_ID),
                ("client_secret", sandbox::SALESFORCE_CLIENT_SECRET),
            ],
        )
        .await?;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json["instance_url"], env.urls.salesforce.as_str());
    assert_eq!(resp.json["token_type"], "Bearer");
    assert!(resp.json["id"].as_str().unwrap_or("").contains("/id/00D"));
    assert!(
        resp.json["issued_at"]
            .as_str()
            .is_some_and(|s| s.parse::<u64>().is_ok())
    );
    assert!(resp.json["signature"].is_string());
    assert!(resp.json.get("expires_in").is_none());
    let token = resp.json["access_token"].as_str().unwrap_or_default();
    let limits = env.get(&env.sf("limits"), token).await?;
    assert_eq!(limits.status, 200);
    assert!(limits.header("sforce-limit-info").starts_with("api-usage="));
    let bad = env
        .form(
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", sandbox::SALESFORCE_CLIENT_ID),
                ("client_secret", "x"),
            ],
        )
        .await?;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"], "invalid_client");
    let bad_password = env
        .form(
            &url,
            &[
                ("grant_type", "password"),
                ("client_id", sandbox::SALESFORCE_CLIENT_ID),
                ("client_secret", sandbox::SALESFORCE_CLIENT_SECRET),
                ("username", sandbox::USERNAME),
                ("password", "wrong"),
            ],
        )
        .await?;
    assert_eq!(
        bad_password.json,
        json!({"error": "invalid_grant", "error_description": "authentication failure"})
    );
    Ok(())
}

#[tokio::test]
async fn strict_audience_refuses_tokens_for_another_service() -> TestResult {
    let mut config = config();
    config.settings.strict_audience = true;
    let env = Env::start_with(config).await?;
    let dataverse = env.dv_token().await?;
    assert_eq!(env.get(&env.dv("WhoAmI"), &dataverse).await?.status, 200);
    assert_eq!(env.get(&env.referrals(), &dataverse).await?.status, 401);
    let partner = env.pc_token().await?;
    assert_eq!(env.get(&env.referrals(), &partner).await?.status, 200);
    Ok(())
}
