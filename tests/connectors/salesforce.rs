//! Salesforce: the token's `instance_url` (allowed or refused), SOQL paging via
//! `nextRecordsUrl`, upsert by external id (201 then 200), error arrays, `403
//! REQUEST_LIMIT_EXCEEDED` as a quota signal, emulated optimistic concurrency,
//! composite collections split at 200 records.

use serde_json::json;
use wiremock::matchers::{header as has_header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use cosync::runtime::connectors::ErrorKind;

const DATA: &str = "/services/data/v62.0";

/// Salesforce with its token endpoint at `{server}/services/oauth2/token`, whose
/// answer sends data calls to `instance`.
async fn salesforce(
    server: &MockServer,
    instance: &MockServer,
    allow_instance: bool,
) -> (CompiledProject, HttpConnectorSet) {
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "00Dsf!token", "instance_url": instance.uri(), "token_type": "Bearer",
            "issued_at": "1767225600000", "id": format!("{}/id/00D/005", instance.uri())
        })))
        .mount(server)
        .await;
    let mut spec = connection(
        &server.uri(),
        Some(&format!("{}/services/oauth2/token", server.uri())),
    );
    if allow_instance {
        spec.allowed_hosts = vec![instance.address().to_string()];
    }
    let p = project();
    let set = set_with(&p, "salesforce", spec);
    (p, set)
}

fn opportunity() -> Value {
    json!({"attributes": {"type": "Opportunity", "url": "/services/data/v62.0/sobjects/Opportunity/006A"},
           "Id": "006A", "Name": "Deal", "SystemModstamp": "2026-01-01T00:00:00.000+0000"})
}

fn get(p: &CompiledProject, key: &str) -> Request {
    Request::Get {
        connector: id(p, "salesforce"),
        entity: "Opportunity".into(),
        key: key.into(),
        select: Vec::new(),
    }
}

#[tokio::test]
async fn data_calls_go_to_the_token_instance_url_only_when_allowed() {
    let server = MockServer::start().await;
    let instance = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{DATA}/sobjects/Opportunity/006A")))
        .and(has_header("Authorization", "Bearer 00Dsf!token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(opportunity()))
        .expect(1)
        .mount(&instance)
        .await;
    let (p, set) = salesforce(&server, &instance, true).await;
    let out = ok(run(&set, get(&p, "006A")).await);
    assert_eq!(
        out,
        json!({"Id": "006A", "Name": "Deal", "SystemModstamp": "2026-01-01T00:00:00.000+0000"})
    );

    let other = MockServer::start().await;
    let (p, set) = salesforce(&other, &instance, false).await;
    let e = run(&set, get(&p, "006A"))
        .await
        .err()
        .unwrap_or_else(|| panic!("expected a refusal"));
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(
        e.message.contains("instance_url") && e.message.contains(&instance.address().to_string()),
        "{}",
        e.message
    );
    assert_eq!(
        received(&instance).await.len(),
        1,
        "the refused instance got no second request"
    );
}

#[tokio::test]
async fn soql_pages_through_next_records_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{DATA}/query")))
        .and(query_param("q", "SELECT Id, Name FROM Opportunity WHERE Referral_Identifier__c = 'r\\'1' AND Amount = 1000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "totalSize": 3, "done": false, "nextRecordsUrl": format!("{DATA}/query/01gA-2000"),
            "records": [opportunity(), opportunity()]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{DATA}/query/01gA-2000")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"totalSize": 3, "done": true, "records": [opportunity()]})),
        )
        .mount(&server)
        .await;
    let (p, set) = salesforce(&server, &server, false).await;
    let found = ok(run(
        &set,
        Request::Find {
            connector: id(&p, "salesforce"),
            entity: "Opportunity".into(),
            where_fields: vec![
                ("Referral_Identifier__c".into(), json!("r'1")),
                ("Amount".into(), json!("1000")),
            ],
            select: vec!["Id".into(), "Name".into()],
            limit: None,
        },
    )
    .await);
    let rows = found.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.get("attributes").is_none()));
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates() {
    let server = MockServer::start().await;
    let upsert = format!("{DATA}/sobjects/Opportunity/Referral_Identifier__c/r-1");
    Mock::given(method("PATCH"))
        .and(path(upsert.clone()))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(
                json!({"id": "006A", "success": true, "errors": [], "created": true}),
            ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(upsert.clone()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"id": "006A", "success": true, "errors": [], "created": false}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{DATA}/sobjects/Opportunity/006A")))
        .respond_with(ResponseTemplate::new(200).set_body_json(opportunity()))
        .mount(&server)
        .await;
    let (p, set) = salesforce(&server, &server, false).await;
    let upsert_request = || Request::Upsert {
        connector: id(&p, "salesforce"),
        entity: "Opportunity".into(),
        match_fields: vec![("Referral_Identifier__c".into(), json!("r-1"))],
        record: json!({"Name": "Deal", "StageName": "Prospecting", "Id": "ignored", "attributes": {"type": "Opportunity"}}),
    };
    assert_eq!(ok(run(&set, upsert_request()).await)["Id"], "006A");
    assert_eq!(ok(run(&set, upsert_request()).await)["Id"], "006A");
    let patches: Vec<Value> = received(&server)
        .await
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .map(body_json)
        .collect();
    assert_eq!(
        patches,
        vec![json!({"Name": "Deal", "StageName": "Prospecting"}); 2]
    );
    let answer = ok(run(&set, Request::Call {
        connector: id(&p, "salesforce"),
        operation: "upsert_by_external_id".into(),
        inputs: json!({"entity": "Opportunity", "field": "Referral_Identifier__c", "value": "r-1", "record": {"Name": "Deal"}}),
    })
    .await);
    assert_eq!(answer["created"], false);
}

#[tokio::test]
async fn error_arrays_become_one_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{DATA}/sobjects/Opportunity")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!([
            {"message": "Required fields are missing: [StageName, CloseDate]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["StageName", "CloseDate"]},
            {"message": "Amount: bad value", "errorCode": "INVALID_FIELD"}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let (p, set) = salesforce(&server, &server, false).await;
    let e = run(
        &set,
        Request::Create {
            connector: id(&p, "salesforce"),
            entity: "Opportunity".into(),
            record: json!({"Name": "x"}),
        },
    )
    .await
    .err()
    .unwrap_or_else(|| panic!("expected an error"));
    assert_eq!((e.kind, e.status), (ErrorKind::Invalid, Some(400)));
    assert!(
        e.message.contains("REQUIRED_FIELD_MISSING: Required fields are missing: [StageName, CloseDate] (fields: StageName, CloseDate); INVALID_FIELD: Amount: bad value"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn request_limit_exceeded_is_throttled_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{DATA}/sobjects/Opportunity/006A")))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])))
        .expect(1)
        .mount(&server)
        .await;
    let (p, set) = salesforce(&server, &server, false).await;
    let e = run(&set, get(&p, "006A"))
        .await
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert_eq!((e.kind, e.status), (ErrorKind::Throttled, Some(403)));
    assert!(
        e.message.contains("REQUEST_LIMIT_EXCEEDED"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_stale_modstamp_is_a_conflict_without_writing() {
    let server = MockServer::start().await;
    let record = format!("{DATA}/sobjects/Opportunity/006A");
    Mock::given(method("GET"))
        .and(path(record.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(opportunity()))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(record))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let (p, set) = salesforce(&server, &server, false).await;
    let update = |stamp: &str| Request::Update {
        connector: id(&p, "salesforce"),
        entity: "Opportunity".into(),
        key: "006A".into(),
        changes: json!({"Name": "Renamed"}),
        if_match: Some(stamp.into()),
    };
    let e = run(&set, update("2025-12-31T23:59:59.000+0000"))
        .await
        .err()
        .unwrap_or_else(|| panic!("expected a conflict"));
    assert_eq!(e.kind, ErrorKind::Conflict);
    ok(run(&set, update("2026-01-01T00:00:00Z")).await);
}

#[tokio::test]
async fn composite_update_sends_at_most_200_records_per_request() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path(format!("{DATA}/composite/sobjects")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"id": "006A", "success": true, "errors": []}])),
        )
        .expect(3)
        .mount(&server)
        .await;
    let (p, set) = salesforce(&server, &server, false).await;
    let records: Vec<Value> = (0..450)
        .map(|i| json!({"Id": format!("006{i:012}"), "StageName": "Closed Won"}))
        .collect();
    let out = ok(run(
        &set,
        Request::Call {
            connector: id(&p, "salesforce"),
            operation: "composite_update".into(),
            inputs: json!({"entity": "Opportunity", "records": records}),
        },
    )
    .await);
    assert_eq!(out.as_array().map(Vec::len), Some(3));
    let sizes: Vec<usize> = received(&server)
        .await
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .map(|r| body_json(r)["records"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![200, 200, 50]);
    let first = received(&server)
        .await
        .into_iter()
        .find(|r| r.method.as_str() == "PATCH")
        .map(|r| body_json(&r)["records"][0].clone());
    assert_eq!(
        first,
        Some(
            json!({"StageName": "Closed Won", "attributes": {"type": "Opportunity"}, "id": "006000000000000"})
        )
    );
}
