//! Dataverse: create with `return=representation` (and the `OData-EntityId`
//! fallback), lookups as `@odata.bind` and `_x_value` read back as `x`, updates
//! with `If-Match` (eTag or `*`), 412 as a conflict, `$filter` literals and
//! `maxpagesize` paging over several pages, WinOpportunity, change tracking,
//! metadata.

use serde_json::json;
use wiremock::matchers::{
    body_json as body_is, header as has_header, headers, method, path, query_param,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use cosync::runtime::connectors::ErrorKind;

const API: &str = "/api/data/v9.2";
const OPP: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
const ACCOUNT: &str = "11111111-2222-3333-4444-555555555555";
const CURRENCY: &str = "99999999-8888-7777-6666-555555555555";

fn dv(server: &MockServer) -> (CompiledProject, HttpConnectorSet) {
    let p = project();
    let set = set_with(&p, "dynamics365", connection(&server.uri(), None));
    (p, set)
}

fn wire_opportunity() -> Value {
    json!({
        "@odata.context": "https://org/api/data/v9.2/$metadata#opportunities/$entity",
        "@odata.etag": "W/\"42\"",
        "opportunityid": OPP, "name": "Deal", "estimatedvalue": 100.0,
        "_customerid_value": ACCOUNT,
        "_customerid_value@OData.Community.Display.V1.FormattedValue": "Contoso",
        "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "account",
        "_transactioncurrencyid_value": CURRENCY
    })
}

fn canonical_opportunity() -> Value {
    json!({
        "@odata.etag": "W/\"42\"", "opportunityid": OPP, "name": "Deal", "estimatedvalue": 100.0,
        "customerid": ACCOUNT, "transactioncurrencyid": CURRENCY
    })
}

#[tokio::test]
async fn create_asks_for_the_representation_and_binds_lookups() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/opportunities")))
        .and(has_header("Prefer", "return=representation"))
        .and(has_header("OData-Version", "4.0"))
        .and(body_is(json!({
            "name": "Deal", "estimatedvalue": 100,
            "customerid_account@odata.bind": format!("/accounts({ACCOUNT})"),
            "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({CURRENCY})")
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(wire_opportunity()))
        .expect(1)
        .mount(&server)
        .await;
    let (p, set) = dv(&server);
    let out = ok(run(&set, Request::Create {
        connector: id(&p, "dynamics365"),
        entity: "opportunity".into(),
        record: json!({"name": "Deal", "estimatedvalue": 100, "customerid": ACCOUNT, "transactioncurrencyid": CURRENCY}),
    })
    .await);
    assert_eq!(out, canonical_opportunity());
}

#[tokio::test]
async fn create_without_a_body_reads_the_entity_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/accounts")))
        .respond_with(ResponseTemplate::new(204).insert_header(
            "OData-EntityId",
            format!("{}{API}/accounts({ACCOUNT})", server.uri()),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/accounts({ACCOUNT})")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"accountid": ACCOUNT, "name": "Contoso"})),
        )
        .mount(&server)
        .await;
    let (p, set) = dv(&server);
    let out = ok(run(
        &set,
        Request::Create {
            connector: id(&p, "dynamics365"),
            entity: "account".into(),
            record: json!({"name": "Contoso"}),
        },
    )
    .await);
    assert_eq!(out, json!({"accountid": ACCOUNT, "name": "Contoso"}));
}

#[tokio::test]
async fn update_sends_the_etag_or_star_and_412_is_a_conflict() {
    let server = MockServer::start().await;
    let record = format!("{API}/opportunities({OPP})");
    Mock::given(method("PATCH"))
        .and(path(record.clone()))
        .and(has_header("If-Match", "W/\"41\""))
        .respond_with(ResponseTemplate::new(412).set_body_json(json!({"error": {"code": "0x80060882", "message": "The version of the existing record doesn't match the RowVersion property provided."}})))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(record.clone()))
        .and(has_header("If-Match", "W/\"42\""))
        .and(body_is(
            json!({"name": "Deal", "parentaccountid@odata.bind": format!("/accounts({ACCOUNT})")}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(wire_opportunity()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(record.clone()))
        .and(has_header("If-Match", "*"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(record))
        .respond_with(ResponseTemplate::new(200).set_body_json(wire_opportunity()))
        .mount(&server)
        .await;
    let (p, set) = dv(&server);
    let update = |changes: Value, if_match: Option<&str>| Request::Update {
        connector: id(&p, "dynamics365"),
        entity: "opportunity".into(),
        key: OPP.into(),
        changes,
        if_match: if_match.map(str::to_string),
    };
    let e = run(&set, update(json!({"name": "Deal"}), Some("W/\"41\"")))
        .await
        .err()
        .unwrap_or_else(|| panic!("expected a conflict"));
    assert_eq!((e.kind, e.status), (ErrorKind::Conflict, Some(412)));
    assert!(e.message.contains("RowVersion"), "{}", e.message);
    let out = ok(run(
        &set,
        update(
            json!({"name": "Deal", "parentaccountid": ACCOUNT}),
            Some("W/\"42\""),
        ),
    )
    .await);
    assert_eq!(out, canonical_opportunity());
    let out = ok(run(&set, update(json!({"name": "Deal"}), None)).await);
    assert_eq!(out, canonical_opportunity());
}

#[tokio::test]
async fn find_filters_with_typed_literals_and_pages_through_next_links() {
    let server = MockServer::start().await;
    let filter = format!(
        "cosell_referralidentifier eq 'O''Neil-1' and statecode eq 0 and _customerid_value eq {ACCOUNT}"
    );
    let page = |n: u32, next: Option<u32>| {
        let mut body =
            json!({"value": [{"opportunityid": format!("o-{n}"), "_customerid_value": ACCOUNT}]});
        if let Some(k) = next {
            body["@odata.nextLink"] = json!(format!(
                "{}{API}/opportunities?$skiptoken=page{k}",
                server.uri()
            ));
        }
        ResponseTemplate::new(200).set_body_json(body)
    };
    Mock::given(method("GET"))
        .and(path(format!("{API}/opportunities")))
        .and(query_param("$filter", filter.as_str()))
        .and(has_header("Prefer", "odata.maxpagesize=5000"))
        .respond_with(page(1, Some(2)))
        .mount(&server)
        .await;
    for (k, next) in [(2, Some(3)), (3, None)] {
        Mock::given(method("GET"))
            .and(path(format!("{API}/opportunities")))
            .and(query_param("$skiptoken", format!("page{k}").as_str()))
            .and(has_header("Prefer", "odata.maxpagesize=5000"))
            .respond_with(page(k, next))
            .mount(&server)
            .await;
    }
    let (p, set) = dv(&server);
    let found = ok(run(
        &set,
        Request::Find {
            connector: id(&p, "dynamics365"),
            entity: "opportunity".into(),
            where_fields: vec![
                ("cosell_referralidentifier".into(), json!("O'Neil-1")),
                ("statecode".into(), json!("0")),
                ("customerid".into(), json!(ACCOUNT)),
            ],
            select: Vec::new(),
            limit: None,
        },
    )
    .await);
    assert_eq!(
        found,
        json!([
            {"opportunityid": "o-1", "customerid": ACCOUNT},
            {"opportunityid": "o-2", "customerid": ACCOUNT},
            {"opportunityid": "o-3", "customerid": ACCOUNT}
        ])
    );
    // A lookup value that is no id matches nothing, without a request.
    let before = received(&server).await.len();
    let none = ok(run(
        &set,
        Request::Find {
            connector: id(&p, "dynamics365"),
            entity: "opportunity".into(),
            where_fields: vec![("customerid".into(), json!("not-a-guid"))],
            select: Vec::new(),
            limit: Some(1),
        },
    )
    .await);
    assert_eq!((none, received(&server).await.len()), (json!([]), before));
}

#[tokio::test]
async fn win_opportunity_posts_the_action_body() {
    let server = MockServer::start().await;
    let expected = json!({"Status": 3, "OpportunityClose": {"subject": "Won in Partner Center", "opportunityid@odata.bind": format!("/opportunities({OPP})")}});
    Mock::given(method("POST"))
        .and(path(format!("{API}/WinOpportunity")))
        .and(body_is(expected.clone()))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&server)
        .await;
    let (p, set) = dv(&server);
    let call = |inputs: Value| Request::Call {
        connector: id(&p, "dynamics365"),
        operation: "win_opportunity".into(),
        inputs,
    };
    assert_eq!(
        ok(run(
            &set,
            call(json!({"opportunityid": OPP, "subject": "Won in Partner Center"}))
        )
        .await),
        json!({})
    );
    ok(run(
        &set,
        call(json!({"Status": "3", "OpportunityClose": expected["OpportunityClose"].clone()})),
    )
    .await);
    assert!(set.writes(id(&p, "dynamics365"), "win_opportunity"));
}

#[tokio::test]
async fn changes_start_tracking_then_follow_the_delta_link() {
    let server = MockServer::start().await;
    let delta = format!(
        "{}{API}/opportunities?$select=name&$deltatoken=919042!08/22/2026",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path(format!("{API}/opportunities")))
        .and(query_param("$select", "name"))
        .and(headers(
            "Prefer",
            vec!["odata.track-changes", "odata.maxpagesize=5000"],
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"@odata.etag": "W/\"1\"", "opportunityid": "o-1", "name": "A"}],
            "@odata.deltaLink": delta
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/opportunities")))
        .and(query_param("$deltatoken", "919042!08/22/2026"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [
                {"opportunityid": "o-2", "name": "B"},
                {"@odata.context": "https://org/api/data/v9.2/$metadata#opportunities/$deletedEntity", "id": "o-1", "reason": "deleted"}
            ],
            "@odata.deltaLink": "next-delta"
        })))
        .mount(&server)
        .await;
    let (p, set) = dv(&server);
    let call = |inputs: Value| Request::Call {
        connector: id(&p, "dynamics365"),
        operation: "changes".into(),
        inputs,
    };
    let first = ok(run(
        &set,
        call(json!({"entity": "opportunity", "select": ["name"]})),
    )
    .await);
    assert_eq!(
        first["records"],
        json!([{"@odata.etag": "W/\"1\"", "opportunityid": "o-1", "name": "A"}])
    );
    assert_eq!(first["delta_link"], json!(delta));
    let second = ok(run(&set, call(json!({"delta_link": delta}))).await);
    assert_eq!(
        second,
        json!({"records": [{"opportunityid": "o-2", "name": "B"}], "deleted": ["o-1"], "delta_link": "next-delta"})
    );
}

#[tokio::test]
async fn metadata_is_a_snapshot_of_entity_definitions_and_option_sets() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/EntityDefinitions(LogicalName='opportunity')")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "LogicalName": "opportunity", "EntitySetName": "opportunities", "PrimaryIdAttribute": "opportunityid",
            "Attributes": [
                {"LogicalName": "name", "AttributeType": "String", "MaxLength": 300, "RequiredLevel": {"Value": "ApplicationRequired"},
                 "DisplayName": {"UserLocalizedLabel": {"Label": "Topic"}}, "IsValidForCreate": true, "IsValidForUpdate": true},
                {"LogicalName": "customerid", "AttributeType": "Customer", "Targets": ["account", "contact"], "IsValidForCreate": true},
                {"LogicalName": "customeridname", "AttributeType": "String", "AttributeOf": "customerid"},
                {"LogicalName": "statecode", "AttributeType": "State", "IsValidForCreate": false, "IsValidForUpdate": true},
                {"LogicalName": "createdon", "AttributeType": "DateTime", "IsValidForCreate": false, "IsValidForUpdate": false},
                {"LogicalName": "estimatedclosedate", "AttributeType": "DateTime", "Format": "DateOnly"}
            ]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/EntityDefinitions(LogicalName='opportunity')/Attributes/Microsoft.Dynamics.CRM.StateAttributeMetadata")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [
            {"LogicalName": "statecode", "OptionSet": {"Options": [{"Value": 0}, {"Value": 1}, {"Value": 2}]}}
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .mount(&server)
        .await;
    let (_, set) = dv(&server);
    let snapshot = ok(set
        .pull_metadata("dynamics365", &["opportunity".to_string()])
        .await);
    assert_eq!(
        snapshot,
        json!({"opportunity": {"path": "opportunities", "key": "opportunityid", "fields": {
            "name": {"type": "string", "label": "Topic", "required": true, "max_length": 300},
            "customerid": {"type": "lookup", "target": "account"},
            "statecode": {"type": "option", "values": [0, 1, 2]},
            "createdon": {"type": "datetime", "read_only": true},
            "estimatedclosedate": {"type": "date"}
        }}})
    );
}
