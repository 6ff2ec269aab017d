//! The declarative `http` kind (`tests/fixtures/connectors/deals.yaml`): request
//! templates (path, query, headers, typed body), response selectors, cursor and
//! next-link paging, error rules, entity actions and named operations.

use serde_json::json;
use wiremock::matchers::{body_json as body_is, header as has_header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use cosync::runtime::connectors::ErrorKind;

fn deals(server: &MockServer) -> (CompiledProject, HttpConnectorSet) {
    let p = project();
    let mut spec = connection(&server.uri(), None);
    spec.auth = Some(AuthSpec::Bearer(cosync::spec::project::BearerSpec {
        token: "deals-token".into(),
    }));
    let set = set_with(&p, "deals", spec);
    (p, set)
}

#[tokio::test]
async fn entity_actions_render_templates_select_and_page() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/deals"))
        .and(query_param("stage", "won"))
        .and(query_param("cursor", "c2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"results": [{"id": "d-3", "stage": "won"}], "paging": {}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/deals"))
        .and(query_param("stage", "won"))
        .and(has_header("Authorization", "Bearer deals-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "results": [{"id": "d-1", "stage": "won"}, {"id": "d-2", "stage": "lost"}],
            "paging": {"next_cursor": "c2"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/deals"))
        .and(has_header("X-Source", "cosync/deals"))
        .and(body_is(
            json!({"deal": {"name": "New", "amount": 5}, "source": "cosync"}),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": {"id": "d-9", "name": "New", "amount": 5}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/deals/d-9"))
        .and(body_is(json!({"stage": "won", "amount": 7})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": "d-9", "stage": "won", "amount": 7}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/deals/d-9"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "d-9", "name": "New"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/deals/gone"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "no such deal"})))
        .mount(&server)
        .await;
    let (p, set) = deals(&server);
    let deals_id = id(&p, "deals");
    let found = ok(run(
        &set,
        Request::Find {
            connector: deals_id,
            entity: "deal".into(),
            where_fields: vec![("stage".into(), json!("won"))],
            select: Vec::new(),
            limit: None,
        },
    )
    .await);
    assert_eq!(
        found,
        json!([{"id": "d-1", "stage": "won"}, {"id": "d-3", "stage": "won"}])
    );
    let created = ok(run(
        &set,
        Request::Create {
            connector: deals_id,
            entity: "deal".into(),
            record: json!({"name": "New", "amount": 5}),
        },
    )
    .await);
    assert_eq!(created, json!({"id": "d-9", "name": "New", "amount": 5}));
    let updated = ok(run(
        &set,
        Request::Update {
            connector: deals_id,
            entity: "deal".into(),
            key: "d-9".into(),
            changes: json!({"stage": "won", "amount": 7}),
            if_match: None,
        },
    )
    .await);
    assert_eq!(updated["amount"], 7);
    let got = ok(run(
        &set,
        Request::Get {
            connector: deals_id,
            entity: "deal".into(),
            key: "d-9".into(),
            select: Vec::new(),
        },
    )
    .await);
    assert_eq!(got["name"], "New");
    let e = run(
        &set,
        Request::Get {
            connector: deals_id,
            entity: "deal".into(),
            key: "gone".into(),
            select: Vec::new(),
        },
    )
    .await
    .err()
    .unwrap_or_else(|| panic!("expected not found"));
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("no such deal"), "{}", e.message);
}

#[tokio::test]
async fn error_rules_classify_answers_by_status_and_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/deals"))
        .and(body_is(
            json!({"deal": {"name": "Dup"}, "source": "cosync"}),
        ))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({"errors": [{"code": "DUPLICATE", "message": "a deal with this name exists"}]}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/deals"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(
                json!({"errors": [{"code": "TOO_LONG", "message": "name too long"}]}),
            ),
        )
        .mount(&server)
        .await;
    let (p, set) = deals(&server);
    let create = |name: &str| Request::Create {
        connector: id(&p, "deals"),
        entity: "deal".into(),
        record: json!({"name": name}),
    };
    let e = run(&set, create("Dup"))
        .await
        .err()
        .unwrap_or_else(|| panic!("expected a conflict"));
    assert_eq!((e.kind, e.status), (ErrorKind::Conflict, Some(422)));
    assert!(
        e.message.contains("a deal with this name exists"),
        "{}",
        e.message
    );
    let e = run(&set, create("x".repeat(300).as_str()))
        .await
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(e.kind, ErrorKind::Invalid);
}

#[tokio::test]
async fn named_operations_page_by_next_link_on_the_configured_host_only() {
    let server = MockServer::start().await;
    let foreign = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/stages"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"items": [{"name": "c"}], "next": format!("{}/stages?page=3", foreign.uri())}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/stages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"items": [{"name": "a"}, {"name": "b"}], "next": "/stages?page=2"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/deals/d-1/archive"))
        .and(body_is(json!({"reason": "duplicate"})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let (p, set) = deals(&server);
    let call = |operation: &str, inputs: Value| Request::Call {
        connector: id(&p, "deals"),
        operation: operation.into(),
        inputs,
    };
    let e = run(&set, call("list_stages", json!({})))
        .await
        .err()
        .unwrap_or_else(|| panic!("expected a refusal"));
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(
        e.message.contains(&foreign.address().to_string()),
        "{}",
        e.message
    );
    assert!(received(&foreign).await.is_empty());
    assert_eq!(
        received(&server).await.len(),
        2,
        "two pages read before the foreign link"
    );
    ok(run(
        &set,
        call("archive_deal", json!({"key": "d-1", "reason": "duplicate"})),
    )
    .await);
    assert!(set.writes(id(&p, "deals"), "archive_deal"));
    assert!(!set.writes(id(&p, "deals"), "list_stages"));
}

#[tokio::test]
async fn next_link_pages_are_collected_through_the_selector() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/stages"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [{"name": "c"}]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/stages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [{"name": "a"}, {"name": "b"}], "next": format!("{}/stages?page=2", server.uri())})))
        .mount(&server)
        .await;
    let (p, set) = deals(&server);
    let out = ok(run(
        &set,
        Request::Call {
            connector: id(&p, "deals"),
            operation: "list_stages".into(),
            inputs: json!({}),
        },
    )
    .await);
    assert_eq!(out, json!(["a", "b", "c"]));
}
