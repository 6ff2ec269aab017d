//! Salesforce REST: sObjects, upsert by external id, SOQL paging, collections, errors,
//! API allocation, describe.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Env, Resp, TestResult};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn opportunity(name: &str) -> Value {
    json!({"Name": name, "StageName": "Prospecting", "CloseDate": "2027-03-31", "Amount": 1000})
}

async fn create(env: &Env, token: &str, sobject: &str, body: Value) -> Result<String> {
    let resp = env
        .call(
            Method::POST,
            &env.sf(&format!("sobjects/{sobject}")),
            Some(token),
            Some(&body),
            &[],
        )
        .await?;
    if resp.status != 201 {
        return Err(format!("create {sobject}: {} {}", resp.status, resp.text).into());
    }
    Ok(resp.json["id"].as_str().unwrap_or_default().to_owned())
}

async fn query(env: &Env, token: &str, soql: &str, batch: Option<usize>) -> Result<Resp> {
    let url = format!(
        "{}?q={}",
        env.sf("query"),
        url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
    );
    let header = batch.map(|b| format!("batchSize={b}"));
    let headers: Vec<(&str, &str)> = header
        .iter()
        .map(|h| ("sforce-query-options", h.as_str()))
        .collect();
    env.call(Method::GET, &url, Some(token), None, &headers)
        .await
}

#[tokio::test]
async fn create_get_and_update_maintain_derived_fields_and_modstamps() -> TestResult {
    let env = Env::start().await?;
    let token = env.sf_token().await?;
    let resp = env
        .call(
            Method::POST,
            &env.sf("sobjects/Opportunity"),
            Some(&token),
            Some(&opportunity("Deal")),
            &[],
        )
        .await?;
    assert_eq!(resp.status, 201, "{}", resp.text);
    assert_eq!(resp.json["success"], true);
    assert_eq!(resp.json["errors"], json!([]));
    let id = resp.json["id"].as_str().unwrap_or_default().to_owned();
    assert!(id.starts_with("006") && id.len() == 18, "{id}");
    let url = env.sf(&format!("sobjects/Opportunity/{id}"));
    let record = env.get(&url, &token).await?;
    assert_eq!(record.json["attributes"]["type"], "Opportunity");
    assert_eq!(record.json["IsClosed"], false);
    assert_eq!(record.json["Probability"], 10);
    assert_eq!(record.json["Sync_with_Partner_Center__c"], false);
    assert_eq!(record.json["Referral_Identifier__c"], Value::Null);
    let modstamp = record.json["SystemModstamp"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(modstamp.ends_with("+0000"), "{modstamp}");
    let fields = env
        .get(&format!("{url}?fields=Name,StageName"), &token)
        .await?;
    let keys: Vec<&String> = fields
        .json
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["attributes", "Name", "StageName", "Id"]);
    let update = env.call(Method::PATCH, &url, Some(&token), Some(&json!({"StageName": "Closed Won", "How_can_Microsoft_help__c": "Quotes or licensing"})), &[]).await?;
    assert_eq!(update.status, 204, "{}", update.text);
    let after = env.get(&url, &token).await?;
    assert_eq!(
        (
            after.json["IsClosed"].as_bool(),
            after.json["IsWon"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(after.json["ForecastCategoryName"], "Closed");
    assert!(after.json["SystemModstamp"].as_str().unwrap_or_default() > modstamp.as_str());
    assert_eq!(after.json["LastModifiedDate"], after.json["SystemModstamp"]);
    let fifteen = env
        .get(
            &env.sf(&format!("sobjects/Opportunity/{}", &id[..15])),
            &token,
        )
        .await?;
    assert_eq!(fifteen.json["Id"], id.as_str(), "15-character ids work");
    let missing = env
        .get(&env.sf("sobjects/Opportunity/0065g000009zzzzAAA"), &token)
        .await?;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json[0]["errorCode"], "NOT_FOUND");
    let deleted = env
        .call(Method::DELETE, &url, Some(&token), None, &[])
        .await?;
    assert_eq!(deleted.status, 204);
    assert_eq!(env.get(&url, &token).await?.status, 404);
    Ok(())
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates() -> TestResult {
    let env = Env::start().await?;
    let token = env.sf_token().await?;
    let url = env.sf("sobjects/Opportunity/Referral_Identifier__c/ref-123");
    let created = env
        .call(
            Method::PATCH,
            &url,
            Some(&token),
            Some(&opportunity("From referral")),
            &[],
        )
        .await?;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["created"], true);
    let id = created.json["id"].as_str().unwrap_or_default().to_owned();
    let updated = env
        .call(
            Method::PATCH,
            &url,
            Some(&token),
            Some(&json!({"Amount": 2000})),
            &[],
        )
        .await?;
    assert_eq!(updated.status, 200);
    assert_eq!(
        updated.json,
        json!({"id": id, "success": true, "errors": [], "created": false})
    );
    let record = env.get(&url, &token).await?;
    assert_eq!(
        (
            record.json["Amount"].as_f64(),
            record.json["Referral_Identifier__c"].as_str()
        ),
        (Some(2000.0), Some("ref-123"))
    );
    let with_key = env
        .call(
            Method::PATCH,
            &url,
            Some(&token),
            Some(&json!({"Referral_Identifier__c": "ref-123"})),
            &[],
        )
        .await?;
    assert_eq!(
        (with_key.status, with_key.json[0]["errorCode"].as_str()),
        (400, Some("INVALID_FIELD"))
    );
    let with_id = env
        .call(
            Method::PATCH,
            &url,
            Some(&token),
            Some(&json!({"Id": id})),
            &[],
        )
        .await?;
    assert_eq!(with_id.status, 400);
    let not_external = env
        .call(
            Method::PATCH,
            &env.sf("sobjects/Opportunity/Name/x"),
            Some(&token),
            Some(&json!({})),
            &[],
        )
        .await?;
    assert_eq!(not_external.status, 404);
    // Two records with the same external id: 300 with their URLs.
    let mut twin = opportunity("Twin");
    twin["Referral_Identifier__c"] = json!("ref-dup");
    create(&env, &token, "Opportunity", twin.clone()).await?;
    create(&env, &token, "Opportunity", twin).await?;
    let ambiguous = env
        .call(
            Method::PATCH,
            &env.sf("sobjects/Opportunity/Referral_Identifier__c/ref-dup"),
            Some(&token),
            Some(&json!({"Amount": 1})),
            &[],
        )
        .await?;
    assert_eq!(ambiguous.status, 300);
    assert_eq!(ambiguous.json.as_array().map(Vec::len), Some(2));
    let update_only = env
        .call(
            Method::PATCH,
            &env.sf("sobjects/Opportunity/Referral_Identifier__c/none?updateOnly=true"),
            Some(&token),
            Some(&opportunity("x")),
            &[],
        )
        .await?;
    assert_eq!(update_only.status, 404);
    Ok(())
}

#[tokio::test]
async fn soql_queries_filter_order_and_page_with_next_records_url() -> TestResult {
    let env = Env::start().await?;
    let token = env.sf_token().await?;
    let account = create(
        &env,
        &token,
        "Account",
        json!({"Name": "Contoso", "BillingPostalCode": "98052"}),
    )
    .await?;
    for i in 0..5 {
        let mut body = opportunity(&format!("Deal {i}"));
        body["Amount"] = json!(i * 100);
        body["AccountId"] = json!(account);
        create(&env, &token, "Opportunity", body).await?;
    }
    let soql = "SELECT Id, Name, Amount, Account.Name FROM Opportunity WHERE Amount >= 100 AND Name LIKE 'deal%' ORDER BY Amount DESC";
    let first = query(&env, &token, soql, Some(2)).await?;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(
        (
            first.json["totalSize"].as_u64(),
            first.json["done"].as_bool()
        ),
        (Some(4), Some(false))
    );
    assert_eq!(first.json["records"][0]["Name"], "Deal 4");
    assert_eq!(first.json["records"][0]["Account"]["Name"], "Contoso");
    assert_eq!(
        first.json["records"][0]["attributes"]["type"],
        "Opportunity"
    );
    let mut names: Vec<String> = Vec::new();
    let mut page = first.json.clone();
    let mut pages = 1;
    loop {
        for record in page["records"].as_array().cloned().unwrap_or_default() {
            names.push(record["Name"].as_str().unwrap_or_default().to_owned());
        }
        match page["nextRecordsUrl"].as_str() {
            Some(next) => {
                assert!(next.starts_with("/services/data/v62.0/query/01g"), "{next}");
                page = env
                    .get(&format!("{}{next}", env.urls.salesforce), &token)
                    .await?
                    .json;
                pages += 1;
            }
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(names, ["Deal 4", "Deal 3", "Deal 2", "Deal 1"]);
    assert_eq!(page["done"], true);
    let count = query(
        &env,
        &token,
        "SELECT COUNT() FROM Opportunity WHERE StageName IN ('Prospecting', 'Qualification')",
        None,
    )
    .await?;
    assert_eq!(count.json["totalSize"], 5);
    let recent = query(&env, &token, "select Id from Opportunity where SystemModstamp > 2020-01-01T00:00:00Z and CloseDate = 2027-03-31 and IsClosed = false limit 2", None).await?;
    assert_eq!(recent.json["records"].as_array().map(Vec::len), Some(2));
    let malformed = query(&env, &token, "SELECT Id FROM Opportunity WHERE", None).await?;
    assert_eq!(
        (malformed.status, malformed.json[0]["errorCode"].as_str()),
        (400, Some("MALFORMED_QUERY"))
    );
    let quoted = query(
        &env,
        &token,
        "SELECT Id FROM Opportunity WHERE SystemModstamp > '2020-01-01T00:00:00Z'",
        None,
    )
    .await?;
    assert_eq!(quoted.status, 400);
    let unknown = query(&env, &token, "SELECT Nope__c FROM Opportunity", None).await?;
    assert_eq!(unknown.json[0]["errorCode"], "INVALID_FIELD");
    let stale = env
        .get(&env.sf("query/01g5g0000000000AAA-2"), &token)
        .await?;
    assert_eq!(stale.json[0]["errorCode"], "INVALID_QUERY_LOCATOR");
    Ok(())
}

#[tokio::test]
async fn composite_collections_create_update_and_roll_back_all_or_none() -> TestResult {
    let env = Env::start().await?;
    let token = env.sf_token().await?;
    let records: Vec<Value> = (0..3)
        .map(|i| {
            let mut r = opportunity(&format!("Bulk {i}"));
            r["attributes"] = json!({"type": "Opportunity"});
            r
        })
        .collect();
    let created = env
        .call(
            Method::POST,
            &env.sf("composite/sobjects"),
            Some(&token),
            Some(&json!({"allOrNone": false, "records": records})),
            &[],
        )
        .await?;
    assert_eq!(created.status, 200, "{}", created.text);
    let ids: Vec<String> = created
        .json
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ids.len(), 3);
    let updates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"attributes": {"type": "Opportunity"}, "id": id, "Amount": 7}))
        .collect();
    let updated = env
        .call(
            Method::PATCH,
            &env.sf("composite/sobjects"),
            Some(&token),
            Some(&json!({"records": updates})),
            &[],
        )
        .await?;
    assert!(
        updated
            .json
            .as_array()
            .is_some_and(|a| a.iter().all(|r| r["success"] == true)),
        "{}",
        updated.text
    );
    // allOrNone: one bad record rolls back the others.
    let mixed = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Opportunity"}, "Name": "Good", "StageName": "Prospecting", "CloseDate": "2027-01-01"},
        {"attributes": {"type": "Opportunity"}, "Name": "Bad"},
    ]});
    let rolled = env
        .call(
            Method::POST,
            &env.sf("composite/sobjects"),
            Some(&token),
            Some(&mixed),
            &[],
        )
        .await?;
    assert_eq!(
        rolled.json[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(
        rolled.json[1]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    let good = query(
        &env,
        &token,
        "SELECT Id FROM Opportunity WHERE Name = 'Good'",
        None,
    )
    .await?;
    assert_eq!(good.json["totalSize"], 0);
    // Upsert by external id in bulk.
    let upserts = json!({"records": [
        {"attributes": {"type": "Opportunity"}, "Referral_Identifier__c": "r-1", "Name": "U1", "StageName": "Prospecting", "CloseDate": "2027-01-01"},
    ]});
    let upsert_url = env.sf("composite/sobjects/Opportunity/Referral_Identifier__c");
    let first = env
        .call(
            Method::PATCH,
            &upsert_url,
            Some(&token),
            Some(&upserts),
            &[],
        )
        .await?;
    assert_eq!(first.json[0]["created"], true, "{}", first.text);
    let second = env
        .call(
            Method::PATCH,
            &upsert_url,
            Some(&token),
            Some(&upserts),
            &[],
        )
        .await?;
    assert_eq!(second.json[0]["created"], false);
    let too_many: Vec<Value> = (0..201)
        .map(|_| json!({"attributes": {"type": "Account"}, "Name": "x"}))
        .collect();
    let limit = env
        .call(
            Method::POST,
            &env.sf("composite/sobjects"),
            Some(&token),
            Some(&json!({"records": too_many})),
            &[],
        )
        .await?;
    assert_eq!(
        (limit.status, limit.json[0]["errorCode"].as_str()),
        (400, Some("EXCEEDED_ID_LIMIT"))
    );
    let ids_param = ids.join(",");
    let fetched = env
        .get(
            &env.sf(&format!(
                "composite/sobjects/Opportunity?ids={ids_param}&fields=Amount"
            )),
            &token,
        )
        .await?;
    assert!(
        fetched
            .json
            .as_array()
            .is_some_and(|a| a.iter().all(|r| r["Amount"] == 7.0)),
        "{}",
        fetched.text
    );
    Ok(())
}

#[tokio::test]
async fn errors_are_arrays_with_codes_and_fields() -> TestResult {
    let env = Env::start().await?;
    let token = env.sf_token().await?;
    let url = env.sf("sobjects/Opportunity");
    let unknown = env
        .call(
            Method::POST,
            &url,
            Some(&token),
            Some(&json!({"Name": "x", "Bogus__c": 1})),
            &[],
        )
        .await?;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json[0]["errorCode"], "INVALID_FIELD");
    assert!(
        unknown.json[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Bogus__c")
    );
    let missing = env
        .call(
            Method::POST,
            &url,
            Some(&token),
            Some(&json!({"Name": "x"})),
            &[],
        )
        .await?;
    assert_eq!(
        missing.json,
        json!([{"message": "Required fields are missing: [StageName, CloseDate]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["StageName", "CloseDate"]}])
    );
    let read_only = env
        .call(
            Method::POST,
            &url,
            Some(&token),
            Some(&json!({"Name": "x", "IsWon": true})),
            &[],
        )
        .await?;
    assert_eq!(
        (
            read_only.json[0]["errorCode"].as_str(),
            read_only.json[0]["fields"][0].as_str()
        ),
        (Some("INVALID_FIELD_FOR_INSERT_UPDATE"), Some("IsWon"))
    );
    let picklist = env
        .call(
            Method::POST,
            &url,
            Some(&token),
            Some(&json!({"Name": "x", "StageName": "Won-ish", "CloseDate": "2027-01-01"})),
            &[],
        )
        .await?;
    assert_eq!(
        picklist.json[0]["errorCode"],
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    let long = env.call(Method::POST, &url, Some(&token), Some(&json!({"Name": "x".repeat(121), "StageName": "Prospecting", "CloseDate": "2027-01-01"})), &[]).await?;
    assert_eq!(long.json[0]["errorCode"], "STRING_TOO_LONG");
    let date = env
        .call(
            Method::POST,
            &url,
            Some(&token),
            Some(&json!({"Name": "x", "StageName": "Prospecting", "CloseDate": "31/03/2027"})),
            &[],
        )
        .await?;
    assert_eq!(date.json[0]["errorCode"], "JSON_PARSER_ERROR");
    let reference = env.call(Method::POST, &url, Some(&token), Some(&json!({"Name": "x", "StageName": "Prospecting", "CloseDate": "2027-01-01", "AccountId": "001000000000000AAA"})), &[]).await?;
    assert_eq!(
        reference.json[0]["errorCode"],
        "INVALID_CROSS_REFERENCE_KEY"
    );
    let count = query(&env, &token, "SELECT COUNT() FROM Opportunity", None).await?;
    assert_eq!(
        count.json["totalSize"], 0,
        "failed creates leave nothing behind"
    );
    Ok(())
}

#[tokio::test]
async fn the_api_allocation_answers_403_request_limit_exceeded() -> TestResult {
    let env = Env::start().await?;
    let token = env.sf_token().await?;
    let first = env.get(&env.sf("limits"), &token).await?;
    let used: u64 = first
        .header("sforce-limit-info")
        .trim_start_matches("api-usage=")
        .split('/')
        .next()
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    let patch = json!({"salesforce_api_limit": used + 2});
    env.call(
        Method::PATCH,
        &env.admin("settings"),
        None,
        Some(&patch),
        &[],
    )
    .await?;
    assert_eq!(env.get(&env.sf("sobjects"), &token).await?.status, 200);
    assert_eq!(env.get(&env.sf("sobjects"), &token).await?.status, 200);
    let refused = env.get(&env.sf("sobjects"), &token).await?;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.json,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(
        refused.header("sforce-limit-info"),
        format!("api-usage={}/{}", used + 2, used + 2)
    );
    env.call(Method::DELETE, &env.admin("usage"), None, None, &[])
        .await?;
    assert_eq!(env.get(&env.sf("sobjects"), &token).await?.status, 200);
    Ok(())
}

#[tokio::test]
async fn describe_lists_fields_types_and_picklist_values() -> TestResult {
    let env = Env::start().await?;
    let token = env.sf_token().await?;
    let describe = env
        .get(&env.sf("sobjects/Opportunity/describe"), &token)
        .await?;
    assert_eq!(describe.status, 200);
    assert_eq!(describe.json["keyPrefix"], "006");
    let fields = describe.json["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let find = |name: &str| {
        fields
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(find("Referral_Identifier__c")["externalId"], true);
    assert_eq!(find("Referral_Identifier__c")["length"], 100);
    assert_eq!(find("Sync_with_Partner_Center__c")["type"], "boolean");
    assert_eq!(
        find("Last_Synced_With_Partner_Center__c")["type"],
        "datetime"
    );
    assert_eq!(find("AccountId")["referenceTo"], json!(["Account"]));
    let stage = find("StageName");
    let stages: Vec<&str> = stage["picklistValues"]
        .as_array()
        .map(|v| v.iter().filter_map(|p| p["value"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        stages.contains(&"Closed Won") && stages.contains(&"Closed Lost"),
        "{stages:?}"
    );
    let help = find("How_can_Microsoft_help__c");
    assert_eq!(help["picklistValues"].as_array().map(Vec::len), Some(6));
    let global = env.get(&env.sf("sobjects"), &token).await?;
    assert!(
        global.json["sobjects"]
            .as_array()
            .is_some_and(|s| s.iter().any(|o| o["name"] == "Contact"))
    );
    let versions = env
        .http
        .get(format!("{}/services/data", env.urls.salesforce))
        .send()
        .await?
        .json::<Value>()
        .await?;
    assert!(
        versions
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x["version"] == "62.0"))
    );
    Ok(())
}
