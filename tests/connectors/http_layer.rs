//! The shared HTTP layer, through the Dataverse connector's `get`: tokens (client
//! credentials cached, refreshed before expiry, refresh-token grant with
//! rotation, one refresh after a 401), retries (429 with Retry-After, 503, never
//! 400, connection errors up to the attempt limit), the request budget, secrets.

use std::time::Instant;

use serde_json::json;
use wiremock::matchers::{body_string_contains, header as has_header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use cosync::connector::ConnectorConfigError;
use cosync::runtime::connectors::ErrorKind;
use cosync::spec::project::{BearerSpec, LimitsSpec};

const ID: &str = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
const RECORD: &str = "/api/data/v9.2/opportunities(6f9619ff-8b86-d011-b42d-00c04fc964ff)";

fn get(project: &CompiledProject) -> Request {
    Request::Get {
        connector: id(project, "dynamics365"),
        entity: "opportunity".into(),
        key: ID.into(),
        select: Vec::new(),
    }
}

fn record() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"opportunityid": ID, "name": "Contoso"}))
}

async fn token_requests(server: &MockServer) -> Vec<wiremock::Request> {
    received(server)
        .await
        .into_iter()
        .filter(|r| r.url.path() == "/token")
        .collect()
}

#[tokio::test]
async fn client_credentials_token_is_cached_and_reused() {
    let server = MockServer::start().await;
    token_endpoint(&server, "tok-1", json!("3600")).await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .and(has_header("Authorization", "Bearer tok-1"))
        .respond_with(record())
        .expect(2)
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(
        &p,
        "dynamics365",
        connection(&server.uri(), Some(&format!("{}/token", server.uri()))),
    );
    for _ in 0..2 {
        assert_eq!(ok(run(&set, get(&p)).await)["name"], "Contoso");
    }
    let tokens = token_requests(&server).await;
    assert_eq!(tokens.len(), 1);
    let form = String::from_utf8_lossy(&tokens[0].body).into_owned();
    for part in [
        "grant_type=client_credentials",
        "client_id=app-id",
        "client_secret=client-secret-value",
        "scope=https%3A%2F%2Forg.crm.dynamics.com%2F.default",
    ] {
        assert!(form.contains(part), "{form}");
    }
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    let server = MockServer::start().await;
    token_endpoint(&server, "short-lived", json!(2)).await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .respond_with(record())
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(
        &p,
        "dynamics365",
        connection(&server.uri(), Some(&format!("{}/token", server.uri()))),
    );
    ok(run(&set, get(&p)).await);
    ok(run(&set, get(&p)).await);
    assert_eq!(token_requests(&server).await.len(), 1, "reused while fresh");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    ok(run(&set, get(&p)).await);
    assert_eq!(
        token_requests(&server).await.len(),
        2,
        "refreshed a second before its 2s expiry"
    );
}

#[tokio::test]
async fn refresh_token_grant_uses_and_rotates_the_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("refresh_token=rt-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "a1", "refresh_token": "rt-2", "expires_in": "1"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("refresh_token=rt-2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "a2", "expires_in": 3600})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .respond_with(record())
        .mount(&server)
        .await;
    let mut spec = connection(&server.uri(), None);
    spec.auth = Some(AuthSpec::Oauth2(OAuth2Spec {
        grant: OAuth2Grant::RefreshToken,
        token_url: format!("{}/token", server.uri()),
        client_id: "app-id".into(),
        client_secret: None,
        refresh_token: Some("rt-1".into()),
        scope: None,
        resource: Some("https://api.partner.microsoft.com".into()),
    }));
    let p = project();
    let set = set_with(&p, "dynamics365", spec);
    ok(run(&set, get(&p)).await);
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    ok(run(&set, get(&p)).await);
    let tokens = token_requests(&server).await;
    assert_eq!(tokens.len(), 2);
    let first = String::from_utf8_lossy(&tokens[0].body).into_owned();
    assert!(
        first.contains("grant_type=refresh_token")
            && first.contains("resource=https%3A%2F%2Fapi.partner.microsoft.com"),
        "{first}"
    );
    let data: Vec<_> = received(&server)
        .await
        .into_iter()
        .filter(|r| r.url.path() == RECORD)
        .collect();
    assert_eq!(header(&data[0], "authorization"), Some("Bearer a1"));
    assert_eq!(header(&data[1], "authorization"), Some("Bearer a2"));
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries() {
    let server = MockServer::start().await;
    // No expires_in (as Salesforce): the token is kept until the service refuses it.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "stale"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "fresh"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .and(has_header("Authorization", "Bearer stale"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"code": "", "message": "expired"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .and(has_header("Authorization", "Bearer fresh"))
        .respond_with(record())
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(
        &p,
        "dynamics365",
        connection(&server.uri(), Some(&format!("{}/token", server.uri()))),
    );
    assert_eq!(ok(run(&set, get(&p)).await)["name"], "Contoso");
    assert_eq!(token_requests(&server).await.len(), 2);
    ok(run(&set, get(&p)).await);
    assert_eq!(
        token_requests(&server).await.len(),
        2,
        "the fresh token is kept"
    );
}

#[tokio::test]
async fn a_persistent_401_is_refreshed_only_once() {
    let server = MockServer::start().await;
    token_endpoint(&server, "refused", json!(3600)).await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"code": "", "message": "no access"}})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(
        &p,
        "dynamics365",
        connection(&server.uri(), Some(&format!("{}/token", server.uri()))),
    );
    let e = run(&set, get(&p)).await.err();
    assert_eq!(
        e.as_ref().map(|e| (e.kind, e.status)),
        Some((ErrorKind::Unauthorized, Some(401)))
    );
    assert_eq!(token_requests(&server).await.len(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured_on_429() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"error": {"code": "0x80072322", "message": "Number of requests exceeded the limit"}})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .respond_with(record())
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(&p, "dynamics365", connection(&server.uri(), None));
    let started = Instant::now();
    ok(run(&set, get(&p)).await);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(950),
        "{waited:?}"
    );
    assert!(waited < std::time::Duration::from_secs(10), "{waited:?}");
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn a_503_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .respond_with(record())
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(&p, "dynamics365", connection(&server.uri(), None));
    assert_eq!(ok(run(&set, get(&p)).await)["name"], "Contoso");
    let requests = received(&server).await;
    assert_eq!(requests.len(), 3);
    let ids: Vec<_> = requests
        .iter()
        .map(|r| header(r, "client-request-id"))
        .collect();
    assert!(
        ids[0].is_some() && ids.iter().all(|i| *i == ids[0]),
        "one correlation id per request: {ids:?}"
    );
}

#[tokio::test]
async fn a_400_is_never_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"code": "0x80060888", "message": "Could not find a property named 'nme'."}})))
        .expect(1)
        .mount(&server)
        .await;
    let p = project();
    let set = set_with(&p, "dynamics365", connection(&server.uri(), None));
    let e = run(&set, get(&p)).await.err();
    let e = e.unwrap_or_else(|| panic!("expected an error"));
    assert_eq!((e.kind, e.status), (ErrorKind::Invalid, Some(400)));
    assert!(
        e.message
            .contains("0x80060888: Could not find a property named 'nme'."),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn connection_errors_are_retried_up_to_the_attempt_limit() {
    let listener = ok(std::net::TcpListener::bind("127.0.0.1:0"));
    let port = ok(listener.local_addr()).port();
    drop(listener);
    let p = project();
    let set = set_with(
        &p,
        "dynamics365",
        connection(&format!("http://127.0.0.1:{port}"), None),
    );
    let e = run(&set, get(&p))
        .await
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(
        e.message.contains("could not connect") && e.message.contains("after 3 attempts"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn the_request_budget_limits_concurrency() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .respond_with(record().set_delay(std::time::Duration::from_millis(200)))
        .mount(&server)
        .await;
    let mut spec = connection(&server.uri(), None);
    spec.limits = Some(LimitsSpec {
        requests: None,
        window: None,
        concurrent: Some(2),
    });
    let p = project();
    let set = set_with(&p, "dynamics365", spec);
    let started = Instant::now();
    let results = futures_util::future::join_all((0..6).map(|_| run(&set, get(&p)))).await;
    assert!(results.iter().all(Result::is_ok));
    let took = started.elapsed();
    // 6 requests, 2 at a time, 200ms each: three rounds.
    assert!(took >= std::time::Duration::from_millis(580), "{took:?}");
}

#[tokio::test]
async fn secrets_never_appear_in_errors_or_debug_output() {
    let server = MockServer::start().await;
    let dir = ok(tempfile::tempdir());
    let secret_file = dir.path().join("client-secret");
    ok(std::fs::write(&secret_file, "file-secret-4242\n"));
    // Tests cannot set variables (`set_var` is unsafe and unsafe code is
    // forbidden): PATH stands in for a secret held in the environment.
    let from_env = ok(std::env::var("PATH"));
    // The token endpoint echoes what it got, as some do in error descriptions.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_client",
            "error_description": format!("client_secret file-secret-4242 is wrong for refresh token {from_env}")
        })))
        .mount(&server)
        .await;
    let mut spec = connection(&server.uri(), None);
    spec.auth = Some(AuthSpec::Oauth2(OAuth2Spec {
        grant: OAuth2Grant::RefreshToken,
        token_url: format!("{}/token", server.uri()),
        client_id: "app-id".into(),
        client_secret: Some(format!("${{file:{}}}", secret_file.display())),
        refresh_token: Some("${env:PATH}".into()),
        scope: None,
        resource: None,
    }));
    let p = project();
    let set = set_with(&p, "dynamics365", spec);
    let e = run(&set, get(&p))
        .await
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    let shown = format!("{e} {e:?} {set:?}");
    assert!(
        !shown.contains("file-secret-4242") && !shown.contains(&from_env),
        "{shown}"
    );
    assert!(
        e.message.contains("invalid_client") && e.message.contains("***"),
        "{}",
        e.message
    );
    let form = token_requests(&server)
        .await
        .first()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .unwrap_or_default();
    let encoded: String = url::form_urlencoded::byte_serialize(from_env.as_bytes()).collect();
    assert!(
        form.contains(&format!("refresh_token={encoded}"))
            && form.contains("client_secret=file-secret-4242&"),
        "the references were resolved when the connection was used"
    );

    // A service answer quoting the access token is scrubbed too.
    let data = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(RECORD))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"code": "x", "message": "token tok-echoed-9876 rejected"}}),
        ))
        .mount(&data)
        .await;
    let mut spec = connection(&data.uri(), None);
    spec.auth = Some(AuthSpec::Bearer(BearerSpec {
        token: "tok-echoed-9876".into(),
    }));
    let set = set_with(&p, "dynamics365", spec);
    let e = run(&set, get(&p))
        .await
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert!(!e.message.contains("tok-echoed-9876"), "{}", e.message);

    // A missing variable is named, never a value.
    let mut spec = connection(&data.uri(), None);
    spec.auth = Some(AuthSpec::Bearer(BearerSpec {
        token: "${env:COSYNC_TEST_SURELY_UNSET_9f2c}".into(),
    }));
    let set = set_with(&p, "dynamics365", spec);
    let e = run(&set, get(&p))
        .await
        .err()
        .unwrap_or_else(|| panic!("expected an error"));
    assert!(
        e.message.contains("COSYNC_TEST_SURELY_UNSET_9f2c") && e.message.contains("not set"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_connector_without_connection_is_a_clear_error() {
    let p = project();
    let e = HttpConnectorSet::new(&p, &BTreeMap::new()).err();
    assert!(
        matches!(&e, Some(ConnectorConfigError::NoConnection { .. })),
        "{e:?}"
    );
    let mut connections = BTreeMap::new();
    for c in &p.connectors {
        connections.insert(c.name.clone(), ConnectionSpec::default());
    }
    let e = HttpConnectorSet::new(&p, &connections).err();
    assert!(
        matches!(&e, Some(ConnectorConfigError::NoBaseUrl { .. })),
        "{e:?}"
    );
    assert!(e.is_some_and(|e| e.to_string().contains("base_url")));
}

#[tokio::test]
async fn the_sandbox_endpoints_configure_every_emulated_kind() {
    use cosync::connector::SandboxEndpoints;
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("POST"))
        .and(path("/login/sandbox/oauth2/v2.0/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains(format!(
            "scope={}%2Fdv%2F.default",
            uri.replace(':', "%3A").replace('/', "%2F")
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "dv-token", "expires_in": 3600})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/login/sandbox/oauth2/v2.0/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=sandbox-rt"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "pc-token", "expires_in": "3600"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/sf/services/oauth2/token"))
        .and(body_string_contains("client_id=sf-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "sf-token", "instance_url": format!("{uri}/sf")}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/dv{RECORD}")))
        .and(has_header("Authorization", "Bearer dv-token"))
        .respond_with(record())
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/pc/v1.0/engagements/referrals/r-1"))
        .and(has_header("Authorization", "Bearer pc-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "r-1"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sf/services/data/v62.0/sobjects/Opportunity/006A"))
        .and(has_header("Authorization", "Bearer sf-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Id": "006A"})))
        .mount(&server)
        .await;
    let endpoints = SandboxEndpoints {
        partner_center: format!("{uri}/pc"),
        partner_center_webhooks: format!("{uri}/pcw"),
        dataverse: format!("{uri}/dv"),
        salesforce: format!("{uri}/sf"),
        login: format!("{uri}/login"),
        client_id: "ms-app".into(),
        client_secret: "ms-secret".into(),
        refresh_token: "sandbox-rt".into(),
        salesforce_client_id: "sf-key".into(),
        salesforce_client_secret: "sf-secret".into(),
    };
    let p = project();
    let set = ok(HttpConnectorSet::for_sandbox(&p, &endpoints));
    assert_eq!(ok(run(&set, get(&p)).await)["name"], "Contoso");
    let get_in = |connector: &str, entity: &str, key: &str| Request::Get {
        connector: id(&p, connector),
        entity: entity.into(),
        key: key.into(),
        select: Vec::new(),
    };
    assert_eq!(
        ok(run(&set, get_in("partner_center", "referral", "r-1")).await)["id"],
        "r-1"
    );
    assert_eq!(
        ok(run(&set, get_in("salesforce", "Opportunity", "006A")).await)["Id"],
        "006A"
    );
    let e = run(&set, get_in("deals", "deal", "d-1")).await.err();
    assert_eq!(e.map(|e| e.kind), Some(ErrorKind::Invalid));
}
