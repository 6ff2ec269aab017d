//! Dataverse webhooks (`POST /webhooks/dataverse`): with polling asleep, an
//! opportunity created with Sync = Yes reaches Partner Center because Dataverse
//! pushed its Create; a wrong or missing key is 401, a malformed context 400,
//! a context whose values contradict the flow's `where:` (Sync = No) or names
//! an unwatched table is taken with 200 and stores nothing, and a redelivery
//! is 200.

use cosync::demo::Crm;
use serde_json::{Value, json};

use super::harness::*;

const KEY: &str = "dv-webhook-key-0123456789";

fn context(message: &str, entity: &str, id: &str, operation: &str, sync: bool) -> Value {
    json!({
        "MessageName": message,
        "PrimaryEntityName": entity,
        "PrimaryEntityId": id,
        "OperationId": operation,
        "CorrelationId": format!("corr-{operation}"),
        "Stage": 40,
        "Mode": 1,
        "InputParameters": [{"key": "Target", "value": {"LogicalName": entity, "Id": id, "Attributes": [
            {"key": "cosell_syncwithpartnercenter", "value": sync}
        ]}}],
        "PostEntityImages": []
    })
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let r = http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[test]
fn a_pushed_create_reaches_partner_center_and_bad_pushes_are_refused() {
    let _serial = serial();
    let keys = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key_file = keys.path().join("dataverse.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap_or_else(|e| panic!("{e}"));
    let reference = format!("${{file:{}}}", key_file.display());
    let add_key = |rel: &str, text: String| {
        if rel != "cosync.yaml" {
            return text;
        }
        let line = "  poll_interval: 30s\n";
        assert!(text.contains(line), "cosync.yaml changed its poll line");
        text.replace(
            line,
            &format!("{line}  dataverse_webhook_key: \"{reference}\"\n"),
        )
    };
    let Pair {
        serve,
        sandbox,
        state,
        project: _project,
        log: _log,
        dir: _dir,
    } = Pair::start(Crm::Dynamics365, add_key, "1h");
    let url = format!("{}/webhooks/dataverse", serve.base);
    runtime().block_on(async {
        let admin = sandbox.admin();
        let currency = admin
            .post("dataverse/transactioncurrencies", &json!({"isocurrencycode": "USD", "currencyname": "US Dollar", "currencysymbol": "$", "currencyprecision": 2, "exchangerate": 1}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let account = admin
            .post("dataverse/accounts", &json!({"name": "Fabrikam", "address1_postalcode": "98052", "address1_country": "US"}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let account_id = account["accountid"].as_str().unwrap_or_default().to_string();
        let contact = admin
            .post("dataverse/contacts", &json!({"firstname": "Ana", "lastname": "Bera", "emailaddress1": "ana@fabrikam.example", "parentcustomerid_account@odata.bind": format!("/accounts({account_id})")}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let opp = admin
            .post(
                "dataverse/opportunities",
                &json!({
                    "name": "Fabrikam - pushed",
                    "estimatedvalue": 50000,
                    "isrevenuesystemcalculated": false,
                    "estimatedclosedate": "2027-06-30",
                    "customerid_account@odata.bind": format!("/accounts({account_id})"),
                    "parentcontactid@odata.bind": format!("/contacts({})", contact["contactid"].as_str().unwrap_or_default()),
                    "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({})", currency["transactioncurrencyid"].as_str().unwrap_or_default()),
                    "cosell_syncwithpartnercenter": true,
                    "cosell_howcanmicrosofthelp": 100000003,
                    "cosell_products": "SOL-24680-TTY",
                    "cosell_referralvisibility": true
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let id = opp["opportunityid"].as_str().unwrap_or_default().to_string();
        assert!(!id.is_empty(), "{opp}");
        let before = counts(&state).total();

        // Refused, nothing stored.
        let create = context("Create", "opportunity", &id, "op-1", true);
        assert_eq!(post(&url, &create).await.0, 401, "no key");
        assert_eq!(post(&format!("{url}?code=wrong"), &create).await.0, 401);
        let keyed = format!("{url}?code={KEY}");
        let (status, answer) = post(&keyed, &json!({"MessageName": "Create"})).await;
        assert_eq!(status, 400, "{answer}");
        let (status, _) = post(&keyed, &context("Create", "account", &id, "op-2", true)).await;
        assert_eq!(status, 200, "an unwatched table");
        let (status, _) = post(&keyed, &context("Update", "opportunity", &id, "op-3", false)).await;
        assert_eq!(status, 200, "Sync = No");
        let (status, _) = post(&keyed, &context("Delete", "opportunity", &id, "op-4", true)).await;
        assert_eq!(status, 200, "deletions are not synced");
        assert_eq!(counts(&state).total(), before, "nothing stored");

        // Taken, and it syncs without any poll.
        let (status, answer) = post(&keyed, &create).await;
        assert_eq!(status, 202, "{answer}");
        let (status, answer) = post(&keyed, &create).await;
        assert_eq!((status, &answer["duplicate"]), (200, &json!(true)), "{answer}");
        let referral = wait_for("the pushed opportunity in Partner Center", T, || async {
            Ok(admin
                .referrals()
                .await?
                .into_iter()
                .find(|r| r["externalReferenceId"] == json!(id)))
        })
        .await;
        assert_eq!(referral["name"], "Fabrikam - pushed", "{referral:#}");
        settle(&admin, &serve, QUIET, T).await;
    });
    let c = counts(&state);
    assert_eq!((c.queued, c.running, c.dead), (0, 0, 0), "{c:?}");
}
