//! Partner Center referrals v1.0: create, get, PUT, PATCH, status rules, OData.

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::support::{Env, TestResult, referral};

/// The Referral definition of Microsoft's connector, as a strict JSON Schema: `x-*`
/// keys dropped, and objects with properties closed to unknown ones.
fn referral_schema() -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("specs/partner-center-referrals.swagger.json");
    let swagger: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let definition = swagger
        .pointer("/definitions/Microsoft.Partner.Service.PartnerReferrals.Contracts.V3.Referral")
        .cloned()
        .ok_or("no Referral definition")?;
    fn convert(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut out: Map<String, Value> = map
                    .iter()
                    .filter(|(k, _)| !k.starts_with("x-"))
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            if k == "properties" {
                                convert_properties(v)
                            } else {
                                convert(v)
                            },
                        )
                    })
                    .collect();
                if out.contains_key("properties") {
                    out.insert("additionalProperties".into(), json!(false));
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
    fn convert_properties(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), convert(v))).collect())
            }
            other => other.clone(),
        }
    }
    let mut schema = convert(&definition);
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    Ok(schema)
}

fn validate(schema: &Value, instance: &Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema).map_err(|e| e.to_string())?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn is_pc_time(value: &Value) -> bool {
    let text = value.as_str().unwrap_or("");
    // 2019-02-23T02:05:23.2931817Z
    text.len() == 28 && text.ends_with('Z') && text.as_bytes().get(19) == Some(&b'.')
}

#[tokio::test]
async fn create_then_get_returns_a_referral_that_validates_against_the_swagger_schema() -> TestResult
{
    let env = Env::start().await?;
    let token = env.pc_token().await?;
    let mut body = referral("Contoso migration");
    body["details"]["dealValue"] = json!("25000.50");
    body["inviteContext"] =
        json!({"assistanceRequestCode": "ProofOfConceptOrDemo", "notes": "POC"});
    body["customerProfile"]["team"] =
        json!([{"firstName": "Cy", "lastName": "Customer", "email": "cy@contoso.example"}]);
    body["details"]["requirements"] =
        json!({"solutions": [{"id": "SOL-12345-ABC", "name": "Migration", "type": "Name"}]});
    body["consent"] =
        json!({"consentToShareReferralWithMicrosoftSellers": true, "consentToContact": true});
    let created = env
        .call(
            Method::POST,
            &env.referrals(),
            Some(&token),
            Some(&body),
            &[],
        )
        .await?;
    assert_eq!(created.status, 200, "{}", created.text);
    let id = created.json["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "server-assigned GUID: {id}"
    );
    let etag = created.json["eTag"].as_str().unwrap_or_default().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "eTag embeds quotes: {etag}"
    );
    assert_eq!(created.header("etag"), etag);
    assert!(
        is_pc_time(&created.json["createdDateTime"]),
        "{}",
        created.json["createdDateTime"]
    );
    assert_eq!(
        created.json["createdDateTime"],
        created.json["updatedDateTime"]
    );
    assert_eq!(created.json["details"]["dealValue"], json!(25000.50));
    assert_eq!(created.json["direction"], "Outgoing");
    // Outgoing referrals sent as New come back accepted (documented create example).
    assert_eq!(
        (
            created.json["status"].as_str(),
            created.json["substatus"].as_str()
        ),
        (Some("Active"), Some("Accepted"))
    );
    assert!(
        created.json["links"]["self"]["uri"]
            .as_str()
            .unwrap_or("")
            .ends_with(&id)
    );

    let fetched = env
        .get(&format!("{}/{id}", env.referrals()), &token)
        .await?;
    assert_eq!(fetched.status, 200);
    assert!(
        fetched.json["@odata.context"]
            .as_str()
            .unwrap_or("")
            .ends_with("$entity")
    );
    assert_eq!(fetched.json["eTag"], etag.as_str());
    assert_eq!(fetched.json["name"], "Contoso migration");
    let schema = referral_schema()?;
    assert!(
        validate(&schema, &json!({"name": 5})).is_err(),
        "the schema checks types"
    );
    assert!(
        validate(&schema, &json!({"colour": "red"})).is_err(),
        "and unknown properties"
    );
    validate(&schema, &fetched.json)?;
    validate(&schema, &created.json)?;
    let list = env.get(&env.referrals(), &token).await?;
    for item in list.json["value"].as_array().cloned().unwrap_or_default() {
        validate(&schema, &item)?;
    }
    let missing = env
        .get(
            &format!("{}/{}", env.referrals(), uuid::Uuid::new_v4()),
            &token,
        )
        .await?;
    assert_eq!(
        (missing.status, missing.json["error"]["code"].as_str()),
        (404, Some("itemNotFound"))
    );
    Ok(())
}

async fn patch(
    env: &Env,
    token: &str,
    id: &str,
    ops: Value,
) -> Result<crate::support::Resp, Box<dyn std::error::Error + Send + Sync>> {
    env.call(
        Method::PATCH,
        &format!("{}/{id}", env.referrals()),
        Some(token),
        Some(&ops),
        &[],
    )
    .await
}

fn set_status(status: &str, substatus: &str) -> Value {
    json!([{"op": "replace", "path": "/status", "value": status}, {"op": "replace", "path": "/substatus", "value": substatus}])
}

#[tokio::test]
async fn status_transitions_follow_the_documented_table_and_closed_is_terminal() -> TestResult {
    let env = Env::start().await?;
    let token = env.pc_token().await?;
    // An incoming lead, as Microsoft would create it (New/Pending).
    let admin = env
        .call(
            Method::POST,
            &env.admin("partner_center/referrals"),
            None,
            Some(&referral("Lead")),
            &[],
        )
        .await?;
    assert_eq!(admin.json["status"], "New", "{}", admin.text);
    let id = admin.json["id"].as_str().unwrap_or_default().to_owned();
    let wrong_pair = patch(&env, &token, &id, set_status("Active", "Pending")).await?;
    assert_eq!(wrong_pair.status, 400);
    assert_eq!(wrong_pair.json["error"]["code"], "invalidRequest");
    assert!(
        wrong_pair.json["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Substatus")
    );
    assert_eq!(
        patch(&env, &token, &id, set_status("New", "Received"))
            .await?
            .status,
        204
    );
    assert_eq!(
        patch(&env, &token, &id, set_status("Active", "Accepted"))
            .await?
            .status,
        204
    );
    let back = patch(&env, &token, &id, set_status("New", "Pending")).await?;
    assert_eq!(
        (back.status, back.json["error"]["code"].as_str()),
        (400, Some("invalidRequest"))
    );
    assert_eq!(
        patch(&env, &token, &id, set_status("Closed", "Won"))
            .await?
            .status,
        204
    );
    let fetched = env
        .get(&format!("{}/{id}", env.referrals()), &token)
        .await?;
    assert!(fetched.json["closedDateTime"].is_string());
    assert!(fetched.json["acceptedDateTime"].is_string());
    for (status, substatus) in [("Closed", "Lost"), ("Active", "Accepted")] {
        let refused = patch(&env, &token, &id, set_status(status, substatus)).await?;
        assert_eq!(refused.status, 400, "{status}/{substatus} after Closed/Won");
    }
    let notes = patch(
        &env,
        &token,
        &id,
        json!([{"op": "replace", "path": "/details/notes", "value": "late"}]),
    )
    .await?;
    assert_eq!(notes.status, 400, "a closed referral is read-only");
    let unknown = patch(&env, &token, &id, set_status("Open", "Accepted")).await?;
    assert_eq!(unknown.status, 400);
    Ok(())
}

#[tokio::test]
async fn put_needs_a_current_if_match_and_no_links() -> TestResult {
    let env = Env::start().await?;
    let token = env.pc_token().await?;
    let created = env.create_referral(&token, &referral("Replace me")).await?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let etag = created["eTag"].as_str().unwrap_or_default().to_owned();
    let url = format!("{}/{id}", env.referrals());
    let mut body = created.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("links");
        map.remove("@odata.context");
    }
    body["externalReferenceId"] = json!("opp-1");
    let missing = env
        .call(Method::PUT, &url, Some(&token), Some(&body), &[])
        .await?;
    assert_eq!(
        (missing.status, missing.json["error"]["code"].as_str()),
        (412, Some("preconditionFailed"))
    );
    let stale = env
        .call(
            Method::PUT,
            &url,
            Some(&token),
            Some(&body),
            &[("if-match", "\"00000000-0000-0000-0000-000000000000\"")],
        )
        .await?;
    assert_eq!(
        (stale.status, stale.json["error"]["code"].as_str()),
        (412, Some("preconditionFailed"))
    );
    let with_links = env
        .call(
            Method::PUT,
            &url,
            Some(&token),
            Some(&created),
            &[("if-match", &etag)],
        )
        .await?;
    assert_eq!(
        (with_links.status, with_links.json["error"]["code"].as_str()),
        (400, Some("invalidRequest"))
    );
    let ok = env
        .call(
            Method::PUT,
            &url,
            Some(&token),
            Some(&body),
            &[("if-match", &etag)],
        )
        .await?;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["externalReferenceId"], "opp-1");
    assert_ne!(ok.json["eTag"], etag.as_str());
    assert_ne!(ok.json["updatedDateTime"], created["updatedDateTime"]);
    // The old eTag is now stale.
    let again = env
        .call(
            Method::PUT,
            &url,
            Some(&token),
            Some(&body),
            &[("if-match", &etag)],
        )
        .await?;
    assert_eq!(again.status, 412);
    Ok(())
}

#[tokio::test]
async fn patch_applies_replace_and_add_and_refuses_other_operations() -> TestResult {
    let env = Env::start().await?;
    let token = env.pc_token().await?;
    let created = env.create_referral(&token, &referral("Patch me")).await?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let ops = json!([
        {"op": "replace", "path": "/details/dealValue", "value": "10000"},
        {"op": "add", "path": "/team/-", "value": {"email": "a@b.com", "firstName": "A", "lastName": "B", "phoneNumber": "1"}},
        {"op": "replace", "path": "/externalReferenceId", "value": "crm-42"},
    ]);
    let no_body = patch(&env, &token, &id, ops).await?;
    assert_eq!(no_body.status, 204);
    assert!(no_body.text.is_empty());
    let url = format!("{}/{id}", env.referrals());
    let represented = env
        .call(
            Method::PATCH,
            &url,
            Some(&token),
            Some(&json!([{"op": "replace", "path": "/details/notes", "value": "n2"}])),
            &[("prefer", "return=representation")],
        )
        .await?;
    assert_eq!(represented.status, 200);
    assert_eq!(represented.json["details"]["dealValue"], json!(10000));
    assert_eq!(represented.json["team"].as_array().map(Vec::len), Some(2));
    assert_eq!(represented.json["externalReferenceId"], "crm-42");
    assert_eq!(represented.json["details"]["notes"], "n2");
    let remove = patch(
        &env,
        &token,
        &id,
        json!([{"op": "remove", "path": "/details/notes"}]),
    )
    .await?;
    assert_eq!(
        (remove.status, remove.json["error"]["code"].as_str()),
        (400, Some("invalidRequest"))
    );
    let read_only = patch(
        &env,
        &token,
        &id,
        json!([{"op": "replace", "path": "/id", "value": "x"}]),
    )
    .await?;
    assert_eq!(read_only.status, 400);
    let unknown = patch(
        &env,
        &token,
        &id,
        json!([{"op": "replace", "path": "/details/nope", "value": 1}]),
    )
    .await?;
    assert_eq!(unknown.status, 400);
    let stale = env
        .call(
            Method::PATCH,
            &url,
            Some(&token),
            Some(&json!([{"op": "replace", "path": "/name", "value": "x"}])),
            &[("if-match", "\"stale\"")],
        )
        .await?;
    assert_eq!(stale.status, 412);
    let after = env.get(&url, &token).await?;
    assert_eq!(
        after.json["details"]["notes"], "n2",
        "refused patches change nothing"
    );
    let current = after.json["eTag"].as_str().unwrap_or_default().to_owned();
    let fresh = env
        .call(
            Method::PATCH,
            &url,
            Some(&token),
            Some(&json!([{"op": "replace", "path": "/name", "value": "Renamed"}])),
            &[
                ("if-match", &current),
                ("content-type", "application/json-patch+json"),
            ],
        )
        .await?;
    assert_eq!(fresh.status, 204);
    Ok(())
}

#[tokio::test]
async fn odata_filter_orderby_top_and_next_link_paging() -> TestResult {
    let mut config = crate::support::config();
    config.settings.partner_center_page_size = 2;
    let env = Env::start_with(config).await?;
    let token = env.pc_token().await?;
    for i in 0..5 {
        let mut body = referral(&format!("Deal {i}"));
        body["customerProfile"]["address"]["country"] = json!(if i % 2 == 0 { "US" } else { "FR" });
        env.create_referral(&token, &body).await?;
    }
    let lead = env
        .call(
            Method::POST,
            &env.admin("partner_center/referrals"),
            None,
            Some(&referral("Incoming lead")),
            &[],
        )
        .await?;
    assert_eq!(lead.status, 200);
    // Follow nextLink over several pages.
    let mut url = format!("{}?$orderby=createdDateTime desc", env.referrals());
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let page = env.get(&url, &token).await?;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_eq!(page.json["@odata.count"], 6);
        pages += 1;
        for item in page.json["value"].as_array().cloned().unwrap_or_default() {
            names.push(item["name"].as_str().unwrap_or_default().to_owned());
        }
        match page.json["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.contains("$skiptoken="), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        [
            "Incoming lead",
            "Deal 4",
            "Deal 3",
            "Deal 2",
            "Deal 1",
            "Deal 0"
        ]
    );
    // $top across pages.
    let top = env
        .get(&format!("{}?$top=3", env.referrals()), &token)
        .await?;
    let next = top.json["@odata.nextLink"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let second = env.get(&next, &token).await?;
    assert_eq!(second.json["value"].as_array().map(Vec::len), Some(1));
    assert!(second.json.get("@odata.nextLink").is_none());
    // Filters.
    let filtered = |filter: &str| format!("{}?$filter={}", env.referrals(), urlencode(filter));
    let incoming = env
        .get(
            &filtered("(direction eq 'Incoming' and substatus eq 'Pending')"),
            &token,
        )
        .await?;
    assert_eq!(names_of(&incoming.json), ["Incoming lead"]);
    let french = env
        .get(&filtered("customerProfile/address/country eq 'FR'"), &token)
        .await?;
    assert_eq!(french.json["@odata.count"], 2);
    let team = env
        .get(
            &filtered("team/any(t:t/email eq 'seller@contoso.example') and status ne 'New'"),
            &token,
        )
        .await?;
    assert_eq!(team.json["@odata.count"], 5);
    let since = env
        .get(
            &filtered("updatedDateTime gt 2000-01-01T00:00:00Z or name eq 'x'"),
            &token,
        )
        .await?;
    assert_eq!(since.json["@odata.count"], 6);
    let external = env
        .get(&filtered("externalReferenceId eq null"), &token)
        .await?;
    assert_eq!(external.json["@odata.count"], 6);
    Ok(())
}

#[tokio::test]
async fn invalid_odata_options_get_400_invalid_request() -> TestResult {
    let env = Env::start().await?;
    let token = env.pc_token().await?;
    for query in [
        "$filter=status eq",
        "$filter=status eq 'New",
        "$filter=nonsense eq 'x'",
        "$filter=(status eq 'New'",
        "$orderby=name asc",
        "$top=-1",
        "$skiptoken=garbage",
        "$frobnicate=1",
    ] {
        let url = format!(
            "{}?{}",
            env.referrals(),
            query.replace(' ', "%20").replace('\'', "%27")
        );
        let resp = env.get(&url, &token).await?;
        assert_eq!(resp.status, 400, "{query}: {}", resp.text);
        assert_eq!(resp.json["error"]["code"], "invalidRequest", "{query}");
    }
    Ok(())
}

fn names_of(list: &Value) -> Vec<String> {
    list["value"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
