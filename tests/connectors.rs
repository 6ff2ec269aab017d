//! The HTTP connectors against wiremock servers on 127.0.0.1 (the network never
//! leaves loopback): one test per documented behaviour of the shared HTTP layer
//! (auth, retries, budget, allow-list, redaction) and of each kind. The connector
//! definitions are the shipped ones (`mappings/connectors/`) plus a declarative
//! fixture (`tests/fixtures/connectors/deals.yaml`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use cosync::compile::{CompiledProject, ConnectorId, compile};
use cosync::connector::HttpConnectorSet;
use cosync::runtime::{ConnectorError, ConnectorSet, Request};
use cosync::source::Loader;
use cosync::spec::common::{Duration, RetrySpec};
use cosync::spec::project::{AuthSpec, ConnectionSpec, OAuth2Grant, OAuth2Spec};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[path = "connectors/dataverse.rs"]
mod dataverse;
#[path = "connectors/declarative.rs"]
mod declarative;
#[path = "connectors/http_layer.rs"]
mod http_layer;
#[path = "connectors/partner_center.rs"]
mod partner_center;
#[path = "connectors/salesforce.rs"]
mod salesforce;
#[path = "connectors/sandbox.rs"]
mod sandbox;
#[path = "connectors/sandbox_behaviours.rs"]
mod sandbox_behaviours;

/// The value of an `Ok`, or a panic with the error.
fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e:?}"),
    }
}

/// The shipped connector definitions plus the declarative fixture, compiled.
fn project() -> CompiledProject {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let outcome = ok(Loader::new().load(&[
        root.join("mappings/connectors"),
        root.join("tests/fixtures/connectors/deals.yaml"),
    ]));
    let (valid, diags) = cosync::validate::validate(outcome);
    assert!(!diags.has_errors(), "{diags:?}");
    ok(compile(&valid))
}

/// A connection to `base` with client-credentials auth at `token_url` (when
/// given) and fast retries (3 attempts, 10ms doubling to 50ms).
fn connection(base: &str, token_url: Option<&str>) -> ConnectionSpec {
    ConnectionSpec {
        base_url: Some(base.to_string()),
        auth: token_url.map(|t| {
            AuthSpec::Oauth2(OAuth2Spec {
                grant: OAuth2Grant::ClientCredentials,
                token_url: t.to_string(),
                client_id: "app-id".into(),
                client_secret: Some("client-secret-value".into()),
                refresh_token: None,
                scope: Some("https://org.crm.dynamics.com/.default".into()),
                resource: None,
            })
        }),
        timeout: Some(Duration("5s".into())),
        retry: Some(RetrySpec {
            attempts: Some(3),
            initial_backoff: Some(Duration("10ms".into())),
            max_backoff: Some(Duration("50ms".into())),
        }),
        ..ConnectionSpec::default()
    }
}

/// A connector set where `name` uses `spec` and every other connector points at
/// a closed port (never used by the test).
fn set_with(project: &CompiledProject, name: &str, spec: ConnectionSpec) -> HttpConnectorSet {
    let mut connections = BTreeMap::new();
    for c in &project.connectors {
        connections.insert(c.name.clone(), connection("http://127.0.0.1:9", None));
    }
    connections.insert(name.to_string(), spec);
    ok(HttpConnectorSet::new(project, &connections))
}

fn id(project: &CompiledProject, name: &str) -> ConnectorId {
    project
        .connector_id(name)
        .unwrap_or_else(|| panic!("no connector {name}"))
}

/// Mounts `POST /token` answering `token` with `expires_in`.
async fn token_endpoint(server: &MockServer, token: &str, expires_in: Value) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "access_token": token, "expires_in": expires_in
        })))
        .mount(server)
        .await;
}

async fn run(set: &HttpConnectorSet, request: Request) -> Result<Value, ConnectorError> {
    set.execute(request).await
}

/// The requests `server` received (method, path, body as JSON when it is).
async fn received(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap_or_default()
}

fn body_json(r: &wiremock::Request) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn header<'a>(r: &'a wiremock::Request, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}
