//! Dataverse Web API: create, update, upsert, eTags, lookups, paging, change tracking,
//! Win/LoseOpportunity, metadata, errors.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Env, Resp, TestResult};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn post(
    env: &Env,
    token: &str,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> Result<Resp> {
    env.call(
        Method::POST,
        &env.dv(path),
        Some(token),
        Some(&body),
        headers,
    )
    .await
}

async fn patch(
    env: &Env,
    token: &str,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> Result<Resp> {
    env.call(
        Method::PATCH,
        &env.dv(path),
        Some(token),
        Some(&body),
        headers,
    )
    .await
}

/// Creates a row and returns its id (from `OData-EntityId`).
async fn create(env: &Env, token: &str, set: &str, body: Value) -> Result<String> {
    let resp = post(env, token, set, body, &[]).await?;
    if resp.status != 204 {
        return Err(format!("create {set}: {} {}", resp.status, resp.text).into());
    }
    let entity = resp.header("odata-entityid");
    let id = entity
        .rsplit('(')
        .next()
        .unwrap_or("")
        .trim_end_matches(')')
        .to_owned();
    Ok(id)
}

#[tokio::test]
async fn create_answers_204_with_entity_id_or_201_with_representation() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    let plain = post(
        &env,
        &token,
        "accounts",
        json!({"name": "Contoso", "address1_postalcode": "98052"}),
        &[],
    )
    .await?;
    assert_eq!(plain.status, 204, "{}", plain.text);
    let entity = plain.header("odata-entityid");
    assert!(
        entity.starts_with(&format!("{}/api/data/v9.2/accounts(", env.urls.dataverse)),
        "{entity}"
    );
    let represented = post(
        &env,
        &token,
        "accounts?$select=name",
        json!({"name": "Fabrikam"}),
        &[("prefer", "return=representation")],
    )
    .await?;
    assert_eq!(represented.status, 201);
    assert!(represented.header("odata-entityid").is_empty());
    assert_eq!(represented.json["name"], "Fabrikam");
    assert!(
        represented.json["@odata.etag"]
            .as_str()
            .is_some_and(|e| e.starts_with("W/\""))
    );
    assert!(
        represented.json["@odata.context"]
            .as_str()
            .unwrap_or("")
            .contains("$metadata#accounts(name)/$entity")
    );
    assert!(
        represented.json.get("address1_city").is_none(),
        "only the selected columns"
    );
    let id = entity
        .rsplit('(')
        .next()
        .unwrap_or("")
        .trim_end_matches(')');
    let fetched = env.get(&env.dv(&format!("accounts({id})")), &token).await?;
    assert_eq!(fetched.json["name"], "Contoso");
    assert!(
        fetched.json["createdon"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(
        fetched.json["address1_city"],
        Value::Null,
        "unset columns read as null"
    );
    assert_eq!(fetched.json["statecode"], 0);
    Ok(())
}

#[tokio::test]
async fn patch_updates_with_weak_etags_and_412_on_mismatch() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    let id = create(
        &env,
        &token,
        "opportunities",
        json!({"name": "Deal", "estimatedvalue": 100}),
    )
    .await?;
    let path = format!("opportunities({id})");
    let before = env.get(&env.dv(&path), &token).await?;
    let etag = before.json["@odata.etag"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let updated = patch(
        &env,
        &token,
        &path,
        json!({"estimatedvalue": 250.5}),
        &[("if-match", &etag)],
    )
    .await?;
    assert_eq!(updated.status, 204, "{}", updated.text);
    let after = env.get(&env.dv(&path), &token).await?;
    assert_eq!(after.json["estimatedvalue"], 250.5);
    assert_ne!(
        after.json["@odata.etag"],
        etag.as_str(),
        "every write bumps the version"
    );
    assert!(after.json["modifiedon"].is_string());
    let stale = patch(
        &env,
        &token,
        &path,
        json!({"name": "x"}),
        &[("if-match", &etag)],
    )
    .await?;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.json["error"]["code"], "0x80060882");
    let represented = patch(
        &env,
        &token,
        &path,
        json!({"name": "Renamed"}),
        &[("prefer", "return=representation")],
    )
    .await?;
    assert_eq!(represented.status, 200);
    assert_eq!(represented.json["name"], "Renamed");
    let current = represented.json["@odata.etag"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let not_modified = env
        .call(
            Method::GET,
            &env.dv(&path),
            Some(&token),
            None,
            &[("if-none-match", &current)],
        )
        .await?;
    assert_eq!(not_modified.status, 304);
    Ok(())
}

#[tokio::test]
async fn patch_upserts_with_if_match_and_if_none_match_star() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    let id = uuid::Uuid::new_v4().to_string();
    let path = format!("accounts({id})");
    let update_only = patch(
        &env,
        &token,
        &path,
        json!({"name": "Nope"}),
        &[("if-match", "*")],
    )
    .await?;
    assert_eq!(update_only.status, 404);
    assert_eq!(update_only.json["error"]["code"], "0x80040217");
    assert!(
        update_only.json["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Does Not Exist")
    );
    let created = patch(
        &env,
        &token,
        &path,
        json!({"name": "Upserted"}),
        &[("if-none-match", "*")],
    )
    .await?;
    assert_eq!(created.status, 204, "{}", created.text);
    assert!(
        created
            .header("odata-entityid")
            .ends_with(&format!("accounts({id})"))
    );
    let create_only = patch(
        &env,
        &token,
        &path,
        json!({"name": "Again"}),
        &[("if-none-match", "*")],
    )
    .await?;
    assert_eq!(create_only.status, 412);
    assert_eq!(
        create_only.json["error"]["message"],
        "A record with matching key values already exists."
    );
    let updated = patch(
        &env,
        &token,
        &path,
        json!({"name": "Updated"}),
        &[("if-match", "*")],
    )
    .await?;
    assert_eq!(updated.status, 204);
    assert_eq!(
        env.get(&env.dv(&path), &token).await?.json["name"],
        "Updated"
    );
    Ok(())
}

#[tokio::test]
async fn lookups_bind_with_odata_bind_and_read_back_as_value_properties() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    let account = create(&env, &token, "accounts", json!({"name": "Contoso"})).await?;
    let contact = create(&env, &token, "contacts", json!({"firstname": "Cy", "lastname": "Customer", "parentcustomerid_account@odata.bind": format!("/accounts({account})")})).await?;
    let currencies = env.get(&env.dv("transactioncurrencies?$filter=isocurrencycode%20eq%20'EUR'&$select=isocurrencycode"), &token).await?;
    let eur = currencies.json["value"][0]["transactioncurrencyid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let id = create(
        &env,
        &token,
        "opportunities",
        json!({
            "name": "Bound",
            "customerid_account@odata.bind": format!("/accounts({account})"),
            "parentaccountid@odata.bind": format!("{}/api/data/v9.2/accounts({account})", env.urls.dataverse),
            "parentcontactid@odata.bind": format!("/contacts({contact})"),
            "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({eur})"),
        }),
    )
    .await?;
    let read = env
        .call(
            Method::GET,
            &env.dv(&format!("opportunities({id})")),
            Some(&token),
            None,
            &[("prefer", "odata.include-annotations=\"*\"")],
        )
        .await?;
    assert_eq!(read.json["_customerid_value"], account.as_str());
    assert_eq!(read.json["_parentaccountid_value"], account.as_str());
    assert_eq!(read.json["_parentcontactid_value"], contact.as_str());
    assert_eq!(read.json["_transactioncurrencyid_value"], eur.as_str());
    assert_eq!(
        read.json["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "account"
    );
    assert_eq!(
        read.json["statuscode@OData.Community.Display.V1.FormattedValue"],
        "In Progress"
    );
    assert!(read.json.get("customerid").is_none());
    let contact_row = env
        .get(&env.dv(&format!("contacts({contact})")), &token)
        .await?;
    assert_eq!(contact_row.json["fullname"], "Cy Customer");
    // Filter on a lookup.
    let by_account = env
        .get(
            &env.dv(&format!(
                "opportunities?$filter=_parentaccountid_value%20eq%20{account}&$select=name"
            )),
            &token,
        )
        .await?;
    assert_eq!(by_account.json["value"][0]["name"], "Bound");
    // Binding to a missing row, the wrong table, or writing a lookup as a plain value.
    let missing = post(&env, &token, "opportunities", json!({"name": "x", "parentaccountid@odata.bind": format!("/accounts({})", uuid::Uuid::new_v4())}), &[]).await?;
    assert_eq!(missing.status, 404);
    let wrong = post(
        &env,
        &token,
        "opportunities",
        json!({"name": "x", "parentaccountid@odata.bind": format!("/contacts({contact})")}),
        &[],
    )
    .await?;
    assert_eq!(wrong.status, 400);
    let plain = post(
        &env,
        &token,
        "opportunities",
        json!({"name": "x", "parentaccountid": account}),
        &[],
    )
    .await?;
    assert_eq!(plain.status, 400);
    let undeclared = post(
        &env,
        &token,
        "opportunities",
        json!({"name": "x", "customerid@odata.bind": format!("/accounts({account})")}),
        &[],
    )
    .await?;
    assert_eq!(
        undeclared.status, 400,
        "the customer lookup needs customerid_account"
    );
    // New opportunities default to the base currency.
    let plain_id = create(
        &env,
        &token,
        "opportunities",
        json!({"name": "Default currency"}),
    )
    .await?;
    let usd = env
        .get(
            &env.dv(&format!(
                "opportunities({plain_id})?$select=_transactioncurrencyid_value"
            )),
            &token,
        )
        .await?;
    assert_eq!(
        usd.json["_transactioncurrencyid_value"],
        "5a4d1000-0000-4000-8000-000000000840"
    );
    Ok(())
}

#[tokio::test]
async fn max_page_size_pages_with_next_links_and_preference_applied() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    for i in 0..7 {
        create(
            &env,
            &token,
            "accounts",
            json!({"name": format!("Account {i}"), "numberofemployees": i}),
        )
        .await?;
    }
    let mut url =
        env.dv("accounts?$select=name,numberofemployees&$orderby=numberofemployees%20desc");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = env
            .call(
                Method::GET,
                &url,
                Some(&token),
                None,
                &[("prefer", "odata.maxpagesize=3")],
            )
            .await?;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_eq!(page.header("preference-applied"), "odata.maxpagesize=3");
        pages += 1;
        for row in page.json["value"].as_array().cloned().unwrap_or_default() {
            seen.push(row["numberofemployees"].as_i64().unwrap_or(-1));
        }
        match page.json["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.contains("$skiptoken="));
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, [6, 5, 4, 3, 2, 1, 0]);
    let top = env.get(&env.dv("accounts?$top=2&$filter=numberofemployees%20ge%202%20and%20startswith(name,'account')"), &token).await?;
    assert_eq!(top.json["value"].as_array().map(Vec::len), Some(2));
    assert!(top.json.get("@odata.nextLink").is_none());
    let counted = env.get(&env.dv("accounts?$count=true&$filter=numberofemployees%20lt%203%20or%20name%20eq%20'Account%206'"), &token).await?;
    assert_eq!(counted.json["@odata.count"], 4);
    Ok(())
}

#[tokio::test]
async fn query_errors_answer_400_with_the_dataverse_error_body() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    for path in [
        "opportunities?$filter=name%20eq",
        "opportunities?$filter=nosuchcolumn%20eq%201",
        "opportunities?$select=nosuchcolumn",
        "opportunities?$orderby=nosuchcolumn",
        "opportunities?$skip=1",
    ] {
        let resp = env.get(&env.dv(path), &token).await?;
        assert_eq!(resp.status, 400, "{path}: {}", resp.text);
        assert!(
            resp.json["error"]["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("0x")),
            "{path}"
        );
        assert!(resp.json["error"]["message"].is_string());
    }
    let unknown = env.get(&env.dv("widgets"), &token).await?;
    assert_eq!(unknown.status, 404);
    let bad_field = post(
        &env,
        &token,
        "opportunities",
        json!({"name": "x", "nosuchcolumn": 1}),
        &[],
    )
    .await?;
    assert_eq!(bad_field.status, 400);
    assert!(
        bad_field.json["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("nosuchcolumn")
    );
    let too_long = post(
        &env,
        &token,
        "accounts",
        json!({"name": "x".repeat(161)}),
        &[],
    )
    .await?;
    assert_eq!(
        (too_long.status, too_long.json["error"]["code"].as_str()),
        (400, Some("0x80044331"))
    );
    let option = post(
        &env,
        &token,
        "opportunities",
        json!({"name": "x", "salesstage": 9}),
        &[],
    )
    .await?;
    assert_eq!(option.status, 400);
    let wrong_type = post(
        &env,
        &token,
        "opportunities",
        json!({"name": "x", "estimatedvalue": "100"}),
        &[],
    )
    .await?;
    assert_eq!(wrong_type.status, 400);
    let currency = post(
        &env,
        &token,
        "transactioncurrencies",
        json!({"currencyname": "No code"}),
        &[],
    )
    .await?;
    assert_eq!(currency.status, 400, "system-required columns");
    Ok(())
}

#[tokio::test]
async fn change_tracking_returns_changes_and_tombstones_through_delta_links() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    let kept = create(&env, &token, "opportunities", json!({"name": "Kept"})).await?;
    let doomed = create(&env, &token, "opportunities", json!({"name": "Doomed"})).await?;
    let tracked = [("prefer", "odata.track-changes")];
    let initial = env
        .call(
            Method::GET,
            &env.dv("opportunities?$select=name"),
            Some(&token),
            None,
            &tracked,
        )
        .await?;
    assert_eq!(initial.status, 200, "{}", initial.text);
    assert_eq!(initial.header("preference-applied"), "odata.track-changes");
    assert_eq!(initial.json["value"].as_array().map(Vec::len), Some(2));
    let delta = initial.json["@odata.deltaLink"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(delta.contains("$deltatoken="), "{delta}");
    let empty = env.get(&delta, &token).await?;
    assert_eq!(empty.json["value"], json!([]));
    patch(
        &env,
        &token,
        &format!("opportunities({kept})"),
        json!({"name": "Kept v2"}),
        &[],
    )
    .await?;
    let added = create(&env, &token, "opportunities", json!({"name": "Added"})).await?;
    let deleted = env
        .call(
            Method::DELETE,
            &env.dv(&format!("opportunities({doomed})")),
            Some(&token),
            None,
            &[],
        )
        .await?;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        env.call(
            Method::DELETE,
            &env.dv(&format!("opportunities({doomed})")),
            Some(&token),
            None,
            &[]
        )
        .await?
        .status,
        404
    );
    let changes = env.get(&delta, &token).await?;
    let rows = changes.json["value"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["Kept v2", "Added"]);
    let tombstone = rows
        .iter()
        .find(|r| r.get("reason").is_some())
        .cloned()
        .unwrap_or_default();
    assert_eq!(tombstone["id"], doomed.as_str());
    assert_eq!(tombstone["reason"], "deleted");
    assert!(
        tombstone["@odata.context"]
            .as_str()
            .unwrap_or("")
            .ends_with("$metadata#opportunities/$deletedEntity")
    );
    assert!(rows.iter().any(|r| r["opportunityid"] == added.as_str()));
    let next = changes.json["@odata.deltaLink"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(env.get(&next, &token).await?.json["value"], json!([]));
    let refused = env
        .call(
            Method::GET,
            &env.dv("opportunities?$filter=name%20eq%20'x'"),
            Some(&token),
            None,
            &tracked,
        )
        .await?;
    assert_eq!(refused.status, 400);
    Ok(())
}

#[tokio::test]
async fn win_and_lose_opportunity_close_and_lock_the_opportunity() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    let won = create(
        &env,
        &token,
        "opportunities",
        json!({"name": "Win me", "estimatedvalue": 5000}),
    )
    .await?;
    let direct = patch(
        &env,
        &token,
        &format!("opportunities({won})"),
        json!({"statecode": 1, "statuscode": 3}),
        &[],
    )
    .await?;
    assert_eq!(direct.status, 400);
    assert!(
        direct.json["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("WinOpportunity")
    );
    let win = post(&env, &token, "WinOpportunity", json!({"Status": 3, "OpportunityClose": {"subject": "Won!", "opportunityid@odata.bind": format!("/opportunities({won})")}}), &[]).await?;
    assert_eq!(win.status, 204, "{}", win.text);
    let row = env
        .get(&env.dv(&format!("opportunities({won})")), &token)
        .await?;
    assert_eq!(
        (
            row.json["statecode"].as_i64(),
            row.json["statuscode"].as_i64()
        ),
        (Some(1), Some(3))
    );
    assert_eq!(row.json["actualvalue"], 5000);
    assert!(row.json["actualclosedate"].is_string());
    let closes = env
        .get(
            &env.dv(&format!(
                "opportunitycloses?$filter=_opportunityid_value%20eq%20{won}"
            )),
            &token,
        )
        .await?;
    assert_eq!(closes.json["value"][0]["subject"], "Won!");
    let locked = patch(
        &env,
        &token,
        &format!("opportunities({won})"),
        json!({"name": "late edit"}),
        &[],
    )
    .await?;
    assert_eq!(locked.status, 400, "a closed opportunity is read-only");
    let again = post(&env, &token, "WinOpportunity", json!({"Status": 3, "OpportunityClose": {"opportunityid@odata.bind": format!("/opportunities({won})")}}), &[]).await?;
    assert_eq!(again.status, 400);
    let reopened = patch(
        &env,
        &token,
        &format!("opportunities({won})"),
        json!({"statecode": 0, "statuscode": 1}),
        &[],
    )
    .await?;
    assert_eq!(reopened.status, 204, "{}", reopened.text);
    let lost = create(&env, &token, "opportunities", json!({"name": "Lose me"})).await?;
    let wrong_status = post(&env, &token, "LoseOpportunity", json!({"Status": 3, "OpportunityClose": {"opportunityid@odata.bind": format!("/opportunities({lost})")}}), &[]).await?;
    assert_eq!(wrong_status.status, 400);
    let lose = post(&env, &token, "LoseOpportunity", json!({"Status": 5, "OpportunityClose": {"subject": "Out-sold", "opportunityid@odata.bind": format!("/opportunities({lost})")}}), &[]).await?;
    assert_eq!(lose.status, 204);
    let row = env
        .get(
            &env.dv(&format!(
                "opportunities({lost})?$select=statecode,statuscode"
            )),
            &token,
        )
        .await?;
    assert_eq!(
        (
            row.json["statecode"].as_i64(),
            row.json["statuscode"].as_i64()
        ),
        (Some(2), Some(5))
    );
    Ok(())
}

#[tokio::test]
async fn entity_metadata_lists_attributes_types_and_options() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    let meta = env
        .get(
            &env.dv("EntityDefinitions(LogicalName='opportunity')?$expand=Attributes"),
            &token,
        )
        .await?;
    assert_eq!(meta.status, 200, "{}", meta.text);
    assert_eq!(meta.json["EntitySetName"], "opportunities");
    assert_eq!(meta.json["PrimaryIdAttribute"], "opportunityid");
    let attributes = meta.json["Attributes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let find = |name: &str| {
        attributes
            .iter()
            .find(|a| a["LogicalName"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(find("name")["AttributeType"], "String");
    assert_eq!(find("name")["MaxLength"], 300);
    assert_eq!(find("estimatedvalue")["AttributeType"], "Money");
    assert_eq!(find("customerid")["AttributeType"], "Customer");
    assert_eq!(
        find("transactioncurrencyid")["Targets"],
        json!(["transactioncurrency"])
    );
    let help = find("cosell_howcanmicrosofthelp");
    assert_eq!(help["AttributeType"], "Picklist");
    let values: Vec<i64> = help["OptionSet"]["Options"]
        .as_array()
        .map(|o| o.iter().filter_map(|x| x["Value"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(
        values,
        [
            100_000_000,
            100_000_001,
            100_000_002,
            100_000_003,
            100_000_004,
            100_000_005
        ]
    );
    let status = find("statuscode");
    assert_eq!(status["OptionSet"]["Options"][2]["State"], 1);
    for attribute in &attributes {
        assert!(
            attribute["@odata.type"]
                .as_str()
                .is_some_and(|t| t.ends_with("AttributeMetadata"))
        );
    }
    let picklists = env.get(&env.dv("EntityDefinitions(LogicalName='opportunity')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName"), &token).await?;
    let names: Vec<&str> = picklists.json["value"]
        .as_array()
        .map(|v| v.iter().filter_map(|a| a["LogicalName"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["salesstage", "cosell_howcanmicrosofthelp"]);
    let with_options = env
        .get(&env.dv("EntityDefinitions(LogicalName='opportunity')/Attributes/Microsoft.Dynamics.CRM.StatusAttributeMetadata?$select=LogicalName&$expand=OptionSet"), &token)
        .await?;
    assert_eq!(with_options.json["value"][0]["LogicalName"], "statuscode");
    assert!(
        with_options.json["value"][0]["OptionSet"]["Options"].is_array(),
        "{}",
        with_options.text
    );
    let missing = env
        .get(&env.dv("EntityDefinitions(LogicalName='widget')"), &token)
        .await?;
    assert_eq!(missing.status, 404);
    let who = env.get(&env.dv("WhoAmI"), &token).await?;
    assert!(who.json["UserId"].is_string());
    Ok(())
}

#[tokio::test]
async fn currencies_are_seeded_with_iso_codes() -> TestResult {
    let env = Env::start().await?;
    let token = env.dv_token().await?;
    let list = env
        .get(
            &env.dv("transactioncurrencies?$select=isocurrencycode&$orderby=isocurrencycode"),
            &token,
        )
        .await?;
    let codes: Vec<&str> = list.json["value"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|c| c["isocurrencycode"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(codes, ["BRL", "EUR", "GBP", "JPY", "USD"]);
    Ok(())
}
