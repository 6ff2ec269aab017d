//! Partner Center: JSON-Patch updates, 412 as a conflict, OData paging, foreign
//! next links and ResourceUris refused before any token is sent, create bodies
//! valid against Microsoft's Referral schema, PUT with If-Match, webhook
//! registration on its own host and audience.

use serde_json::json;
use wiremock::matchers::{body_json as body_is, header as has_header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use cosync::runtime::connectors::ErrorKind;

const REFERRALS: &str = "/v1.0/engagements/referrals";

/// Partner Center at `referrals` (token at `{referrals}/token`), webhooks at
/// `webhooks`.
fn pc_connection(referrals: &MockServer, webhooks: Option<&MockServer>) -> ConnectionSpec {
    let mut spec = connection(
        &referrals.uri(),
        Some(&format!("{}/token", referrals.uri())),
    );
    spec.webhooks_url = webhooks.map(MockServer::uri);
    if let Some(AuthSpec::Oauth2(o)) = &mut spec.auth {
        o.scope = Some("https://api.partner.microsoft.com/.default".into());
    }
    spec
}

fn referral() -> Value {
    json!({
        "id": "r-1", "name": "Contoso co-sell", "status": "New", "substatus": "Pending",
        "details": {"dealValue": 5000}, "eTag": "\"e-1\"",
        "links": {"self": {"uri": "https://api.partner.microsoft.com/v1.0/engagements/referrals/r-1", "method": "GET"}}
    })
}

#[tokio::test]
async fn update_is_a_json_patch_of_replace_and_add_with_if_match() {
    let server = MockServer::start().await;
    token_endpoint(&server, "pc-token", json!("3600")).await;
    Mock::given(method("GET"))
        .and(path(format!("{REFERRALS}/r-1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(referral()))
        .mount(&server)
        .await;
    let expected = json!([
        {"op": "replace", "path": "/status", "value": "Active"},
        {"op": "replace", "path": "/substatus", "value": "Accepted"},
        {"op": "replace", "path": "/details/dealValue", "value": 7500},
        {"op": "add", "path": "/details/currency", "value": "EUR"},
        {"op": "add", "path": "/customerProfile", "value": {"address": {"country": "DE"}}},
        {"op": "add", "path": "/externalReferenceId", "value": "opp-9"}
    ]);
    Mock::given(method("PATCH"))
        .and(path(format!("{REFERRALS}/r-1")))
        .and(has_header("If-Match", "\"e-1\""))
        .and(has_header("Prefer", "return=representation"))
        .and(body_is(expected))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "r-1", "status": "Active", "eTag": "\"e-2\""})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(&p, "partner_center", pc_connection(&server, None));
    let out = ok(run(
        &set,
        Request::Update {
            connector: id(&p, "partner_center"),
            entity: "referral".into(),
            key: "r-1".into(),
            changes: json!({
                "status": "Active", "substatus": "Accepted", "/details/dealValue": 7500,
                "/details/currency": "EUR", "/customerProfile/address/country": "DE",
                "externalReferenceId": "opp-9"
            }),
            if_match: Some("\"e-1\"".into()),
        },
    )
    .await);
    assert_eq!(out["eTag"], "\"e-2\"");
    let patch = received(&server)
        .await
        .into_iter()
        .find(|r| r.method.as_str() == "PATCH");
    assert!(
        patch
            .as_ref()
            .and_then(|r| header(r, "MS-CorrelationId"))
            .is_some()
    );
}

#[tokio::test]
async fn a_412_is_surfaced_as_a_conflict() {
    let server = MockServer::start().await;
    token_endpoint(&server, "pc-token", json!(3600)).await;
    Mock::given(method("GET"))
        .and(path(format!("{REFERRALS}/r-1")))
        .respond_with(ResponseTemplate::new(200).set_body_json(referral()))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{REFERRALS}/r-1")))
        .respond_with(ResponseTemplate::new(412).set_body_json(
            json!({"error": {"code": "preconditionFailed", "message": "The eTag does not match.", "target": "referral"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(&p, "partner_center", pc_connection(&server, None));
    let e = run(
        &set,
        Request::Update {
            connector: id(&p, "partner_center"),
            entity: "referral".into(),
            key: "r-1".into(),
            changes: json!({"name": "Renamed"}),
            if_match: Some("\"stale\"".into()),
        },
    )
    .await
    .err()
    .unwrap_or_else(|| panic!("expected a conflict"));
    assert_eq!((e.kind, e.status), (ErrorKind::Conflict, Some(412)));
    assert!(
        e.message
            .contains("preconditionFailed: The eTag does not match."),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn find_filters_with_odata_and_follows_next_links() {
    let server = MockServer::start().await;
    token_endpoint(&server, "pc-token", json!(3600)).await;
    let page = |n: u32, next: Option<String>| {
        let mut body = json!({"value": [{"id": format!("r-{n}"), "externalReferenceId": "O'Neil", "customerProfile": {"address": {"country": "DE"}}}]});
        if let Some(link) = next {
            body["@odata.nextLink"] = json!(link);
        }
        ResponseTemplate::new(200).set_body_json(body)
    };
    Mock::given(method("GET"))
        .and(path(REFERRALS))
        .and(query_param(
            "$filter",
            "externalReferenceId eq 'O''Neil' and customerProfile/address/country eq 'DE'",
        ))
        .respond_with(page(
            1,
            Some(format!("{}{REFERRALS}?$skiptoken=2", server.uri())),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(REFERRALS))
        .and(query_param("$skiptoken", "2"))
        .respond_with(page(
            2,
            Some(format!("{}{REFERRALS}?$skiptoken=3", server.uri())),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(REFERRALS))
        .and(query_param("$skiptoken", "3"))
        .respond_with(page(3, None))
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(&p, "partner_center", pc_connection(&server, None));
    let found = ok(run(
        &set,
        Request::Find {
            connector: id(&p, "partner_center"),
            entity: "referral".into(),
            where_fields: vec![
                ("externalReferenceId".into(), json!("O'Neil")),
                ("/customerProfile/address/country".into(), json!("DE")),
            ],
            select: Vec::new(),
            limit: None,
        },
    )
    .await);
    let ids: Vec<Value> = found
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![json!("r-1"), json!("r-2"), json!("r-3")],
        "{found}"
    );
    let listed = ok(run(&set, Request::Call {
        connector: id(&p, "partner_center"),
        operation: "list_referrals".into(),
        inputs: json!({"filter": "externalReferenceId eq 'O''Neil' and customerProfile/address/country eq 'DE'"}),
    })
    .await);
    assert_eq!(listed, found);
}

#[tokio::test]
async fn a_foreign_next_link_is_refused_before_any_token_is_sent() {
    let server = MockServer::start().await;
    let foreign = MockServer::start().await;
    token_endpoint(&server, "pc-token", json!(3600)).await;
    Mock::given(method("GET"))
        .and(path(REFERRALS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": "r-1"}],
            "@odata.nextLink": format!("{}{REFERRALS}?$skiptoken=2", foreign.uri())
        })))
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(&p, "partner_center", pc_connection(&server, None));
    let e = run(
        &set,
        Request::Call {
            connector: id(&p, "partner_center"),
            operation: "list_referrals".into(),
            inputs: json!({}),
        },
    )
    .await
    .err()
    .unwrap_or_else(|| panic!("expected a refusal"));
    assert_eq!(e.kind, ErrorKind::Invalid);
    let host = foreign.address().to_string();
    assert!(
        e.message.contains(&host),
        "{} should name {host}",
        e.message
    );
    assert!(
        received(&foreign).await.is_empty(),
        "the foreign host got a request"
    );
}

#[tokio::test]
async fn a_foreign_resource_uri_is_refused_before_any_token_is_sent() {
    let server = MockServer::start().await;
    let webhooks = MockServer::start().await;
    let foreign = MockServer::start().await;
    token_endpoint(&server, "pc-token", json!(3600)).await;
    Mock::given(method("GET"))
        .and(path(format!("{REFERRALS}/abc-123")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "abc-123"})))
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(
        &p,
        "partner_center",
        pc_connection(&server, Some(&webhooks)),
    );
    let get = |uri: String| Request::Call {
        connector: id(&p, "partner_center"),
        operation: "get_referral".into(),
        inputs: json!({"resource_uri": uri}),
    };
    let e = run(
        &set,
        get(format!(
            "{}/engagements/v1/referrals/abc-123",
            foreign.uri()
        )),
    )
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
    assert!(
        received(&server).await.is_empty(),
        "not even a token was requested"
    );
    // The documented ResourceUri lives on the webhook host: the id is read from it
    // and fetched from the referrals API.
    let out = ok(run(
        &set,
        get(format!(
            "{}/engagements/v1/referrals/abc-123",
            webhooks.uri()
        )),
    )
    .await);
    assert_eq!(out["id"], "abc-123");
    assert!(received(&webhooks).await.is_empty());
}

/// Microsoft's Referral definition as a draft-4 JSON Schema, strict: objects with
/// `properties` accept no other members.
pub(super) fn referral_validator() -> jsonschema::Validator {
    fn strict(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                    map.insert("additionalProperties".into(), Value::Bool(false));
                }
                map.values_mut().for_each(strict);
            }
            Value::Array(items) => items.iter_mut().for_each(strict),
            _ => {}
        }
    }
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("specs/partner-center-referrals.swagger.json");
    let swagger: Value = ok(serde_json::from_str(&ok(std::fs::read_to_string(file))));
    let mut definitions = swagger["definitions"].clone();
    strict(&mut definitions);
    let mut schema =
        definitions["Microsoft.Partner.Service.PartnerReferrals.Contracts.V3.Referral"].clone();
    schema["definitions"] = definitions;
    ok(jsonschema::draft4::new(&schema))
}

#[tokio::test]
async fn create_bodies_validate_against_the_swagger_referral_schema() {
    let server = MockServer::start().await;
    token_endpoint(&server, "pc-token", json!(3600)).await;
    Mock::given(method("POST"))
        .and(path(REFERRALS))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "r-new", "eTag": "\"e-1\"", "status": "New"})),
        )
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(&p, "partner_center", pc_connection(&server, None));
    // What the CRM-to-Partner-Center flows project (nested, camelCase), plus the
    // response-only members a re-sent record may carry.
    let record = json!({
        "name": "Contoso - Azure migration", "externalReferenceId": "opp-1", "type": "Shared",
        "qualification": "SalesQualified", "status": "New", "substatus": "Pending",
        "customerProfile": {
            "name": "Contoso", "size": "51to500employees",
            "address": {"addressLine1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE"},
            "team": [{"firstName": "Ada", "lastName": "L", "email": "ada@contoso.example", "phoneNumber": "1"}]
        },
        "consent": {"consentToContact": true, "consentToShareReferralWithMicrosoftSellers": true},
        "details": {
            "dealValue": 12000.5, "currency": "EUR", "closingDateTime": "2026-12-31T00:00:00Z",
            "notes": "migrate", "requirements": {"solutions": [{"id": "SOL-12345-ABC"}]}
        },
        "inviteContext": {"assistanceRequestCode": "ProofOfConceptOrDemo", "notes": "help"},
        "team": [{"firstName": "Bo", "lastName": "P", "email": "bo@partner.example"}],
        "target": [{"type": "SolutionProfile", "id": "SOL-12345-ABC"}],
        "links": {"self": {"uri": "x", "method": "GET"}}, "eTag": "\"old\""
    });
    let out = ok(run(
        &set,
        Request::Create {
            connector: id(&p, "partner_center"),
            entity: "referral".into(),
            record,
        },
    )
    .await);
    assert_eq!(out["id"], "r-new");
    ok(run(
        &set,
        Request::Call {
            connector: id(&p, "partner_center"),
            operation: "create_referral".into(),
            inputs: json!({"referral": {"name": "Second", "details": {"dealValue": 1}}}),
        },
    )
    .await);
    let validator = referral_validator();
    let bodies: Vec<Value> = received(&server)
        .await
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == REFERRALS)
        .map(body_json)
        .collect();
    assert_eq!(bodies.len(), 2);
    for body in &bodies {
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{body}");
        assert!(body.get("links").is_none() && body.get("eTag").is_none());
    }
    // The schema does reject what Partner Center would.
    assert!(!validator.is_valid(&json!({"details": {"dealValue": "12000"}})));
    assert!(!validator.is_valid(&json!({"consent": {"consentToShareInfoWithOthers": true}})));
}

#[tokio::test]
async fn replace_puts_the_referral_with_if_match_and_without_links() {
    let server = MockServer::start().await;
    token_endpoint(&server, "pc-token", json!(3600)).await;
    let mut expected = referral();
    if let Value::Object(m) = &mut expected {
        m.remove("links");
        m.remove("eTag");
    }
    Mock::given(method("PUT"))
        .and(path(format!("{REFERRALS}/r-1")))
        .and(has_header("If-Match", "\"e-1\""))
        .and(body_is(expected))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "r-1", "eTag": "\"e-2\""})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(&p, "partner_center", pc_connection(&server, None));
    let out = ok(run(
        &set,
        Request::Call {
            connector: id(&p, "partner_center"),
            operation: "replace_referral".into(),
            inputs: json!({"referral": referral()}),
        },
    )
    .await);
    assert_eq!(out["eTag"], "\"e-2\"");
}

#[tokio::test]
async fn webhook_registration_uses_its_own_host_and_audience() {
    let server = MockServer::start().await;
    let webhooks = MockServer::start().await;
    token_endpoint(&server, "pc-token", json!(3600)).await;
    let registration = json!({"WebhookUrl": "https://cosync.example/hooks", "WebhookEvents": ["referral-created", "referral-updated"]});
    Mock::given(method("GET"))
        .and(path("/webhooks/v1/registration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"WebhookUrl": "https://old.example", "WebhookEvents": ["referral-created"]}),
        ))
        .mount(&webhooks)
        .await;
    Mock::given(method("PUT"))
        .and(path("/webhooks/v1/registration"))
        .and(body_is(registration.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"SubscriberId": "s-1"})))
        .expect(1)
        .mount(&webhooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/webhooks/v1/registration"))
        .and(body_is(registration.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"SubscriberId": "s-2"})))
        .expect(1)
        .mount(&webhooks)
        .await;
    Mock::given(method("GET"))
        .and(path("/webhooks/v1/registration/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            "referral-created",
            "referral-updated",
            "test-created"
        ])))
        .mount(&webhooks)
        .await;
    let p = project();
    let set = set_with(
        &p,
        "partner_center",
        pc_connection(&server, Some(&webhooks)),
    );
    let call = |operation: &str, inputs: Value| Request::Call {
        connector: id(&p, "partner_center"),
        operation: operation.into(),
        inputs,
    };
    let events = ok(run(&set, call("list_webhook_events", json!({}))).await);
    assert_eq!(events[2], "test-created");
    let replaced = ok(run(&set, call("register_webhook", json!({"url": "https://cosync.example/hooks", "events": "referral-created, referral-updated", "replace": "true"}))).await);
    assert_eq!(replaced["SubscriberId"], "s-1");
    let posted = ok(run(&set, call("register_webhook", json!({"url": "https://cosync.example/hooks", "events": ["referral-created", "referral-updated"], "replace": false}))).await);
    assert_eq!(posted["SubscriberId"], "s-2");
    let scopes: Vec<String> = received(&server)
        .await
        .iter()
        .filter(|r| r.url.path() == "/token")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(scopes.len(), 1);
    assert!(
        scopes[0].contains("api.partnercenter.microsoft.com"),
        "{scopes:?}"
    );
    assert!(set.writes(id(&p, "partner_center"), "register_webhook"));
    assert!(!set.writes(id(&p, "partner_center"), "list_webhook_events"));
}
