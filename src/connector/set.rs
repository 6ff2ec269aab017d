//! [`HttpConnectorSet`]: the project's connectors talking to the real services
//! (or the sandbox) over HTTP, built from a compiled project and the connections
//! of one environment.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use url::Url;

use super::Connector;
use super::http::HttpClient;
use super::registry::implementation;
use super::secrets::has_reference;
use crate::compile::{CompiledConnector, CompiledProject, ConnectorId};
use crate::expr::value::Env;
use crate::runtime::connectors::{BoxFuture, ConnectorError, ConnectorSet, ErrorKind, Request};
use crate::spec::common::{Duration, RetrySpec};
use crate::spec::connector::{ConnectorKind, HttpMethod};
use crate::spec::project::{AuthSpec, ConnectionSpec, LimitsSpec, OAuth2Grant, OAuth2Spec};

/// Why a connector set cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorConfigError {
    /// The environment has no connection for a connector.
    #[error(
        "connector `{connector}` has no connection in this environment (add it under `connections:`)"
    )]
    NoConnection {
        /// The connector.
        connector: String,
    },
    /// A connection without `base_url`.
    #[error("the connection of connector `{connector}` has no `base_url`")]
    NoBaseUrl {
        /// The connector.
        connector: String,
    },
    /// A URL setting that does not parse.
    #[error("the connection of connector `{connector}`: `{field}` is not a valid URL ({reason})")]
    InvalidUrl {
        /// The connector.
        connector: String,
        /// The setting.
        field: String,
        /// Why.
        reason: String,
    },
    /// A declarative operation whose templates or paths do not compile.
    #[error("connector `{connector}`, operation `{operation}`: {reason}")]
    InvalidOperation {
        /// The connector.
        connector: String,
        /// The operation.
        operation: String,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The sandbox's endpoints and fixed credentials, for [`HttpConnectorSet::for_sandbox`].
/// `Debug` leaves the secrets out.
#[derive(Clone, PartialEq, Eq)]
pub struct SandboxEndpoints {
    /// Base URL of the Partner Center referrals API.
    pub partner_center: String,
    /// Base URL of the Partner Center webhook registration API.
    pub partner_center_webhooks: String,
    /// Base URL of the Dataverse org.
    pub dataverse: String,
    /// Base URL of Salesforce (token endpoint and instance).
    pub salesforce: String,
    /// Base URL of the Microsoft identity platform (`{login}/{tenant}/oauth2/v2.0/token`).
    pub login: String,
    /// Client id of the Microsoft identity endpoint (Partner Center, Dataverse).
    pub client_id: String,
    /// Client secret of the Microsoft identity endpoint.
    pub client_secret: String,
    /// Refresh token the Microsoft token endpoint accepts (Partner Center's
    /// delegated grant).
    pub refresh_token: String,
    /// Consumer key of the Salesforce connected app (Salesforce's token endpoint
    /// has its own credentials).
    pub salesforce_client_id: String,
    /// Consumer secret of the Salesforce connected app.
    pub salesforce_client_secret: String,
}

impl std::fmt::Debug for SandboxEndpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxEndpoints")
            .field("partner_center", &self.partner_center)
            .field("partner_center_webhooks", &self.partner_center_webhooks)
            .field("dataverse", &self.dataverse)
            .field("salesforce", &self.salesforce)
            .field("login", &self.login)
            .field("client_id", &self.client_id)
            .field("salesforce_client_id", &self.salesforce_client_id)
            .finish_non_exhaustive()
    }
}

/// The tenant of the sandbox's Microsoft identity endpoint.
const SANDBOX_TENANT: &str = "sandbox";

impl SandboxEndpoints {
    /// The connection of a connector of `kind` against the sandbox, if it emulates
    /// that kind.
    pub fn connection(&self, kind: ConnectorKind) -> Option<ConnectionSpec> {
        let trim = |s: &str| s.trim_end_matches('/').to_string();
        let microsoft_token = format!("{}/{SANDBOX_TENANT}/oauth2/v2.0/token", trim(&self.login));
        let oauth = |grant, token_url: String, scope: Option<String>| {
            let (id, secret) = if kind == ConnectorKind::Salesforce {
                (&self.salesforce_client_id, &self.salesforce_client_secret)
            } else {
                (&self.client_id, &self.client_secret)
            };
            Some(AuthSpec::Oauth2(OAuth2Spec {
                grant,
                token_url,
                client_id: id.clone(),
                client_secret: Some(secret.clone()),
                refresh_token: (grant == OAuth2Grant::RefreshToken)
                    .then(|| self.refresh_token.clone()),
                scope,
                resource: None,
            }))
        };
        let (base, webhooks, auth) = match kind {
            ConnectorKind::PartnerCenter => (
                trim(&self.partner_center),
                Some(trim(&self.partner_center_webhooks)),
                oauth(
                    OAuth2Grant::RefreshToken,
                    microsoft_token,
                    Some("https://api.partner.microsoft.com/.default".into()),
                ),
            ),
            ConnectorKind::Dataverse => (
                trim(&self.dataverse),
                None,
                oauth(
                    OAuth2Grant::ClientCredentials,
                    microsoft_token,
                    Some(format!("{}/.default", trim(&self.dataverse))),
                ),
            ),
            ConnectorKind::Salesforce => (
                trim(&self.salesforce),
                None,
                oauth(
                    OAuth2Grant::ClientCredentials,
                    format!("{}/services/oauth2/token", trim(&self.salesforce)),
                    None,
                ),
            ),
            ConnectorKind::Http => return None,
        };
        Some(ConnectionSpec {
            base_url: Some(base),
            webhooks_url: webhooks,
            auth,
            timeout: Some(Duration("30s".into())),
            retry: Some(RetrySpec {
                attempts: Some(4),
                initial_backoff: Some(Duration("100ms".into())),
                max_backoff: Some(Duration("5s".into())),
            }),
            limits: None,
            allowed_hosts: Vec::new(),
        })
    }
}

/// What a kind's constructor gets.
pub(crate) struct BuildContext<'a> {
    /// The connector definition.
    pub(crate) connector: &'a CompiledConnector,
    /// Its connection in the chosen environment.
    pub(crate) connection: &'a ConnectionSpec,
    /// The shared HTTP client.
    pub(crate) client: &'a HttpClient,
    /// Where declarative templates are compiled.
    pub(crate) env: Env,
}

struct Entry {
    name: String,
    connector: Box<dyn Connector>,
    writes: HashSet<String>,
}

/// The project's connectors over HTTP.
pub struct HttpConnectorSet {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for HttpConnectorSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        f.debug_struct("HttpConnectorSet")
            .field("connectors", &names)
            .finish()
    }
}

fn is_loopback(text: &str) -> bool {
    Url::parse(text).ok().is_some_and(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    })
}

impl HttpConnectorSet {
    /// Every connector of `project` with its connection from `connections` (the
    /// environment's, by connector name). Secrets are not read here: they are
    /// resolved when a connection is first used.
    pub fn new(
        project: &CompiledProject,
        connections: &BTreeMap<String, ConnectionSpec>,
    ) -> Result<HttpConnectorSet, ConnectorConfigError> {
        let mut chosen = Vec::new();
        for c in &project.connectors {
            let connection =
                connections
                    .get(&c.name)
                    .ok_or_else(|| ConnectorConfigError::NoConnection {
                        connector: c.name.clone(),
                    })?;
            check_urls(&c.name, connection)?;
            chosen.push(Some(connection.clone()));
        }
        Self::build(project, chosen)
    }

    /// Every connector of `project` pointed at the sandbox. Connectors of a kind the
    /// sandbox does not emulate (`http`) answer every request with an error.
    pub fn for_sandbox(
        project: &CompiledProject,
        endpoints: &SandboxEndpoints,
    ) -> Result<HttpConnectorSet, ConnectorConfigError> {
        let chosen = project
            .connectors
            .iter()
            .map(|c| endpoints.connection(c.spec.kind))
            .collect();
        Self::build(project, chosen)
    }

    /// Like [`HttpConnectorSet::for_sandbox`], with `limits` as every
    /// connection's request budget instead of the services' own (Dataverse's
    /// 6000 requests per 5 minutes would otherwise pace a benchmark at 20/s).
    pub fn for_sandbox_with_limits(
        project: &CompiledProject,
        endpoints: &SandboxEndpoints,
        limits: LimitsSpec,
    ) -> Result<HttpConnectorSet, ConnectorConfigError> {
        let chosen = project
            .connectors
            .iter()
            .map(|c| {
                endpoints.connection(c.spec.kind).map(|mut conn| {
                    conn.limits = Some(limits.clone());
                    conn
                })
            })
            .collect();
        Self::build(project, chosen)
    }

    fn build(
        project: &CompiledProject,
        connections: Vec<Option<ConnectionSpec>>,
    ) -> Result<HttpConnectorSet, ConnectorConfigError> {
        let all_loopback = connections.iter().flatten().all(|c| {
            c.base_url
                .as_deref()
                .is_some_and(|b| !has_reference(b) && is_loopback(b))
        });
        let client = HttpClient::new(!all_loopback).map_err(ConnectorConfigError::Client)?;
        let mut entries = Vec::new();
        for (c, connection) in project.connectors.iter().zip(connections) {
            let connector: Box<dyn Connector> = match (connection, implementation(c.spec.kind)) {
                (Some(connection), Some(imp)) => (imp.build)(&BuildContext {
                    connector: c,
                    connection: &connection,
                    client: &client,
                    env: project.env,
                })?,
                _ => Box::new(Unconfigured(c.name.clone())),
            };
            let mut writes: HashSet<String> = super::registry::builtin_operations(c.spec.kind)
                .iter()
                .filter(|o| o.writes)
                .map(|o| o.name.to_string())
                .collect();
            writes.extend(
                c.spec
                    .operations
                    .iter()
                    .filter(|(_, o)| o.method != HttpMethod::Get)
                    .map(|(n, _)| n.clone()),
            );
            entries.push(Entry {
                name: c.name.clone(),
                connector,
                writes,
            });
        }
        Ok(HttpConnectorSet { entries })
    }

    /// Entity metadata of connector `connector` (all its declared entities when
    /// `entities` is empty), shaped like a connector definition's `entities:`.
    pub async fn pull_metadata(
        &self,
        connector: &str,
        entities: &[String],
    ) -> Result<Value, ConnectorError> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.name == connector)
            .ok_or_else(|| {
                ConnectorError::new(
                    ErrorKind::Invalid,
                    format!("unknown connector `{connector}`"),
                )
            })?;
        entry.connector.pull_metadata(entities).await
    }
}

/// Entity metadata of one connector of `set`; see [`HttpConnectorSet::pull_metadata`].
pub async fn pull_metadata(
    set: &HttpConnectorSet,
    connector: &str,
    entities: &[String],
) -> Result<Value, ConnectorError> {
    set.pull_metadata(connector, entities).await
}

fn check_urls(name: &str, c: &ConnectionSpec) -> Result<(), ConnectorConfigError> {
    let base = c
        .base_url
        .as_deref()
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| ConnectorConfigError::NoBaseUrl {
            connector: name.to_string(),
        })?;
    for (field, value) in [
        ("base_url", Some(base)),
        ("webhooks_url", c.webhooks_url.as_deref()),
    ] {
        if let Some(v) = value.filter(|v| !has_reference(v))
            && let Err(e) = Url::parse(v.trim())
        {
            return Err(ConnectorConfigError::InvalidUrl {
                connector: name.to_string(),
                field: field.to_string(),
                reason: e.to_string(),
            });
        }
    }
    Ok(())
}

impl ConnectorSet for HttpConnectorSet {
    fn execute<'a>(&'a self, request: Request) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        match self.entries.get(request.connector().0) {
            Some(entry) => entry.connector.execute(request),
            None => Box::pin(async {
                Err(ConnectorError::new(ErrorKind::Invalid, "unknown connector"))
            }),
        }
    }

    fn writes(&self, connector: ConnectorId, operation: &str) -> bool {
        self.entries
            .get(connector.0)
            .is_some_and(|e| e.writes.contains(operation))
    }
}

/// A connector without a usable connection.
struct Unconfigured(String);

impl Unconfigured {
    fn error(&self) -> ConnectorError {
        ConnectorError::new(
            ErrorKind::Invalid,
            format!(
                "connector `{}` has no connection here (the sandbox does not emulate it)",
                self.0
            ),
        )
    }
}

impl Connector for Unconfigured {
    fn execute<'a>(&'a self, _request: Request) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        Box::pin(async move { Err(self.error()) })
    }

    fn pull_metadata<'a>(
        &'a self,
        _entities: &'a [String],
    ) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        Box::pin(async move { Err(self.error()) })
    }
}
