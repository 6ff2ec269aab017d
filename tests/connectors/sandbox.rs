//! The connectors against the real sandbox (`cosync::sandbox`, in-process on
//! 127.0.0.1): both sides of the wire agree on tokens, paths, bodies and answers.

use serde_json::json;

use super::*;
use cosync::connector::SandboxEndpoints;
use cosync::runtime::connectors::ErrorKind;

pub(super) type Running = (
    cosync::sandbox::SandboxHandle,
    CompiledProject,
    HttpConnectorSet,
);

async fn sandbox() -> Running {
    sandbox_with(cosync::sandbox::Settings::default()).await
}

pub(super) async fn sandbox_with(settings: cosync::sandbox::Settings) -> Running {
    let config = cosync::sandbox::SandboxConfig {
        settings,
        ..cosync::sandbox::SandboxConfig::default()
    };
    let handle = ok(cosync::sandbox::start(config).await);
    let urls = handle.urls().clone();
    let credentials = handle.credentials();
    let endpoints = SandboxEndpoints {
        partner_center: urls.partner_center,
        partner_center_webhooks: urls.partner_center_webhooks,
        dataverse: urls.dataverse,
        salesforce: urls.salesforce,
        login: urls.login,
        client_id: credentials.client_id.into(),
        client_secret: credentials.client_secret.into(),
        refresh_token: credentials.refresh_token.into(),
        salesforce_client_id: credentials.salesforce_client_id.into(),
        salesforce_client_secret: credentials.salesforce_client_secret.into(),
    };
    let p = project();
    let set = ok(HttpConnectorSet::for_sandbox(&p, &endpoints));
    (handle, p, set)
}

#[tokio::test]
async fn dataverse_round_trip() {
    let (handle, p, set) = sandbox().await;
    let dv = id(&p, "dynamics365");
    let account = ok(run(
        &set,
        Request::Create {
            connector: dv,
            entity: "account".into(),
            record: json!({"name": "Contoso", "address1_postalcode": "10115"}),
        },
    )
    .await);
    let account_id = account["accountid"].clone();
    let opportunity = ok(run(&set, Request::Create {
        connector: dv,
        entity: "opportunity".into(),
        record: json!({"name": "Deal", "customerid": account_id, "cosell_referralidentifier": "r-1"}),
    })
    .await);
    assert_eq!(opportunity["customerid"], account_id, "{opportunity}");
    let found = ok(run(
        &set,
        Request::Find {
            connector: dv,
            entity: "opportunity".into(),
            where_fields: vec![("cosell_referralidentifier".into(), json!("r-1"))],
            select: Vec::new(),
            limit: Some(1),
        },
    )
    .await);
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    let key = opportunity["opportunityid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let etag = opportunity["@odata.etag"].as_str().map(str::to_string);
    let updated = ok(run(
        &set,
        Request::Update {
            connector: dv,
            entity: "opportunity".into(),
            key: key.clone(),
            changes: json!({"name": "Deal 2"}),
            if_match: etag.clone(),
        },
    )
    .await);
    assert_eq!(updated["name"], "Deal 2");
    let stale = run(
        &set,
        Request::Update {
            connector: dv,
            entity: "opportunity".into(),
            key,
            changes: json!({"name": "Deal 3"}),
            if_match: etag,
        },
    )
    .await
    .err();
    assert_eq!(stale.map(|e| e.kind), Some(ErrorKind::Conflict));
    handle.shutdown().await;
}

#[tokio::test]
async fn partner_center_round_trip() {
    let (handle, p, set) = sandbox().await;
    let pc = id(&p, "partner_center");
    let created = ok(run(&set, Request::Create {
        connector: pc,
        entity: "referral".into(),
        record: json!({
            "name": "Contoso co-sell", "type": "Independent", "qualification": "SalesQualified",
            "status": "New", "substatus": "Pending",
            "customerProfile": {"name": "Contoso", "address": {"country": "DE", "postalCode": "10115"}},
            "details": {"dealValue": 1000, "currency": "EUR"}
        }),
    })
    .await);
    let referral_id = created["id"].as_str().unwrap_or_default().to_string();
    let updated = ok(run(
        &set,
        Request::Update {
            connector: pc,
            entity: "referral".into(),
            key: referral_id.clone(),
            changes: json!({"externalReferenceId": "opp-1", "/details/dealValue": 2000}),
            if_match: created["eTag"].as_str().map(str::to_string),
        },
    )
    .await);
    assert_eq!(updated["externalReferenceId"], "opp-1", "{updated}");
    assert_eq!(updated["details"]["dealValue"], json!(2000), "{updated}");
    let stale = run(
        &set,
        Request::Update {
            connector: pc,
            entity: "referral".into(),
            key: referral_id,
            changes: json!({"name": "Renamed"}),
            if_match: created["eTag"].as_str().map(str::to_string),
        },
    )
    .await
    .err();
    assert_eq!(stale.map(|e| e.kind), Some(ErrorKind::Conflict));
    let events = ok(run(
        &set,
        Request::Call {
            connector: pc,
            operation: "list_webhook_events".into(),
            inputs: json!({}),
        },
    )
    .await);
    assert!(events.as_array().is_some_and(|e| !e.is_empty()), "{events}");
    handle.shutdown().await;
}

#[tokio::test]
async fn salesforce_round_trip() {
    let (handle, p, set) = sandbox().await;
    let sf = id(&p, "salesforce");
    let upsert = |name: &str| Request::Upsert {
        connector: sf,
        entity: "Opportunity".into(),
        match_fields: vec![("Referral_Identifier__c".into(), json!("r-77"))],
        record: json!({"Name": name, "StageName": "Prospecting", "CloseDate": "2026-12-31"}),
    };
    let first = ok(run(&set, upsert("Deal")).await);
    let second = ok(run(&set, upsert("Deal 2")).await);
    assert_eq!(first["Id"], second["Id"]);
    assert_eq!(second["Name"], "Deal 2");
    let found = ok(run(
        &set,
        Request::Find {
            connector: sf,
            entity: "Opportunity".into(),
            where_fields: vec![("Referral_Identifier__c".into(), json!("r-77"))],
            select: Vec::new(),
            limit: None,
        },
    )
    .await);
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    handle.shutdown().await;
}

#[tokio::test]
async fn operations_and_metadata_round_trip() {
    let (handle, p, set) = sandbox().await;
    let dv = id(&p, "dynamics365");
    let pc = id(&p, "partner_center");
    let call = |connector, operation: &str, inputs: Value| Request::Call {
        connector,
        operation: operation.into(),
        inputs,
    };
    let account = ok(run(
        &set,
        Request::Create {
            connector: dv,
            entity: "account".into(),
            record: json!({"name": "Fabrikam"}),
        },
    )
    .await);
    let opportunity = ok(run(
        &set,
        Request::Create {
            connector: dv,
            entity: "opportunity".into(),
            record: json!({"name": "To win", "customerid": account["accountid"].clone()}),
        },
    )
    .await);
    let tracking = ok(run(
        &set,
        call(
            dv,
            "changes",
            json!({"entity": "opportunity", "select": ["name"]}),
        ),
    )
    .await);
    assert!(tracking["delta_link"].is_string(), "{tracking}");
    ok(run(
        &set,
        call(
            dv,
            "win_opportunity",
            json!({"opportunityid": opportunity["opportunityid"].clone(), "subject": "Won"}),
        ),
    )
    .await);
    let won = ok(run(
        &set,
        Request::Get {
            connector: dv,
            entity: "opportunity".into(),
            key: opportunity["opportunityid"]
                .as_str()
                .unwrap_or_default()
                .into(),
            select: Vec::new(),
        },
    )
    .await);
    assert_eq!(won["statecode"], json!(1), "{won}");
    let delta = ok(run(
        &set,
        call(
            dv,
            "changes",
            json!({"delta_link": tracking["delta_link"].clone()}),
        ),
    )
    .await);
    assert!(
        delta["records"].as_array().is_some_and(|r| !r.is_empty()),
        "{delta}"
    );
    let registered = ok(run(&set, call(pc, "register_webhook", json!({"url": "https://cosync.example/hooks", "events": ["referral-created", "test-created"], "replace": true}))).await);
    assert!(registered.is_object(), "{registered}");
    let replaced = ok(run(&set, call(pc, "register_webhook", json!({"url": "https://cosync.example/hooks2", "events": ["referral-created"], "replace": true}))).await);
    assert_eq!(
        replaced["WebhookUrl"], "https://cosync.example/hooks2",
        "{replaced}"
    );
    let metadata = ok(set
        .pull_metadata("dynamics365", &["opportunity".to_string()])
        .await);
    assert!(
        metadata["opportunity"]["fields"]["statecode"]["values"].is_array(),
        "{metadata}"
    );
    let metadata = ok(set
        .pull_metadata("salesforce", &["Opportunity".to_string()])
        .await);
    assert!(
        metadata["Opportunity"]["fields"]["StageName"]["values"].is_array(),
        "{metadata}"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn paging_and_audiences_against_small_pages() {
    let settings = cosync::sandbox::Settings {
        strict_audience: true,
        partner_center_page_size: 2,
        dataverse_max_page_size: 2,
        salesforce_batch_size: 2,
        ..cosync::sandbox::Settings::default()
    };
    let (handle, p, set) = sandbox_with(settings).await;
    let (dv, pc, sf) = (
        id(&p, "dynamics365"),
        id(&p, "partner_center"),
        id(&p, "salesforce"),
    );
    for i in 0..5 {
        let name = format!("Paged {i}");
        ok(run(
            &set,
            Request::Create {
                connector: dv,
                entity: "account".into(),
                record: json!({"name": name, "address1_city": "Paging"}),
            },
        )
        .await);
        ok(run(&set, Request::Create {
            connector: pc,
            entity: "referral".into(),
            record: json!({"name": name, "type": "Independent", "status": "New", "substatus": "Pending", "externalReferenceId": "paged"}),
        })
        .await);
        ok(run(
            &set,
            Request::Create {
                connector: sf,
                entity: "Account".into(),
                record: json!({"Name": name, "BillingCity": "Paging"}),
            },
        )
        .await);
    }
    let find = |connector, entity: &str, field: &str, value: &str| Request::Find {
        connector,
        entity: entity.into(),
        where_fields: vec![(field.into(), json!(value))],
        select: Vec::new(),
        limit: None,
    };
    let count = |v: Value| v.as_array().map_or(0, Vec::len);
    assert_eq!(
        count(ok(run(
            &set,
            find(dv, "account", "address1_city", "Paging")
        )
        .await)),
        5
    );
    assert_eq!(
        count(ok(run(
            &set,
            find(pc, "referral", "externalReferenceId", "paged")
        )
        .await)),
        5
    );
    assert_eq!(
        count(ok(
            run(&set, find(sf, "Account", "BillingCity", "Paging")).await
        )),
        5
    );
    let events = ok(run(
        &set,
        Request::Call {
            connector: pc,
            operation: "list_webhook_events".into(),
            inputs: json!({}),
        },
    )
    .await);
    assert!(
        events.is_array(),
        "the webhook API accepted its own audience: {events}"
    );
    handle.shutdown().await;
}

/// The one record `modified_since` lists for `entity` where `field` = `value`.
async fn polled(
    set: &HttpConnectorSet,
    connector: ConnectorId,
    entity: &str,
    field: &str,
    value: &str,
) -> Value {
    let answer = ok(run(
        set,
        Request::Call {
            connector,
            operation: "modified_since".into(),
            inputs: json!({"entity": entity, "since": "2000-01-01T00:00:00Z", "where": {field: value}, "limit": 10}),
        },
    )
    .await);
    match answer["records"].as_array().map(Vec::as_slice) {
        Some([one]) => one.clone(),
        _ => panic!("expected one record: {answer}"),
    }
}

fn time(record: &Value, field: &str) -> chrono::DateTime<chrono::Utc> {
    record[field]
        .as_str()
        .and_then(cosync::domain::parse_time)
        .unwrap_or_else(|| panic!("no `{field}` time in {record}"))
}

/// `modified_since` returns each record's creation time next to its
/// modification time: equal on the first version, apart once it changed (what
/// the poller tells a creation from an update by).
#[tokio::test]
async fn modified_since_returns_creation_times() {
    let (handle, p, set) = sandbox().await;
    for (crm, entity, key, name) in [
        ("dynamics365", "account", "accountid", "name"),
        ("salesforce", "Account", "Id", "Name"),
    ] {
        let c = id(&p, crm);
        let created = ok(run(
            &set,
            Request::Create {
                connector: c,
                entity: entity.into(),
                record: json!({name: "Polled Co"}),
            },
        )
        .await);
        let record_id = created[key].as_str().unwrap_or_default().to_string();
        let first = polled(&set, c, entity, name, "Polled Co").await;
        assert_eq!(first["id"], json!(record_id), "{crm}: {first}");
        let created_at = time(&first, "created_at");
        assert_eq!(created_at, time(&first, "modified_at"), "{crm}: {first}");
        // Dataverse stamps whole seconds: change the record in a later one.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        ok(run(
            &set,
            Request::Update {
                connector: c,
                entity: entity.into(),
                key: record_id.clone(),
                changes: json!({name: "Polled Co 2"}),
                if_match: None,
            },
        )
        .await);
        let second = polled(&set, c, entity, name, "Polled Co 2").await;
        assert_eq!(second["id"], json!(record_id), "{crm}: {second}");
        assert_eq!(time(&second, "created_at"), created_at, "{crm}: {second}");
        assert!(
            time(&second, "modified_at") > created_at,
            "{crm}: {first} then {second}"
        );
        assert_ne!(first["version"], second["version"], "{crm}");
    }
    handle.shutdown().await;
}
