//! `cosync.yaml`: the project file — environments and their connections, the state
//! store and the sync server.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Duration, RetrySpec};

/// The project file, `cosync.yaml`, at the root of a cosync project.
///
/// ```yaml
/// project: contoso-co-sell
/// default_environment: sandbox
/// environments:
///   sandbox: { sandbox: true }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSpec {
    /// The project's name (shown in logs, run records and the CRM Audit field).
    pub project: String,
    /// What this project syncs, for people reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The environment used when a command gets no `--env` (default `sandbox`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_environment: Option<String>,
    /// Named environments (`sandbox`, `uat`, `production`, ...): where each connector
    /// points and how it authenticates.
    pub environments: BTreeMap<String, EnvironmentSpec>,
    /// Where the durable state lives (links, queue, run history, audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateSpec>,
    /// Settings of `cosync serve` (webhook receiver, workers, retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSpec>,
    /// Behaviour of the sync itself (audit field, synced mark, loop protection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncSpec>,
}

/// One environment: a set of connections, or the embedded sandbox.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// What this environment is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `true` points every connection at the built-in emulator (`cosync sandbox`),
    /// started on demand; URLs and credentials are then filled in by cosync.
    #[serde(default)]
    pub sandbox: bool,
    /// Per connector (by connector name): base URLs, authentication and limits.
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionSpec>,
}

/// Where and how to reach one connector in one environment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    /// Base URL of the service, e.g. `https://api.partner.microsoft.com` or
    /// `https://contoso.crm.dynamics.com`. May be a `${env:NAME}` reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Partner Center only: base URL of the webhook registration API, which lives on
    /// its own host (`https://api.partnercenter.microsoft.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks_url: Option<String>,
    /// How to obtain credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// Per-request timeout (default `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Retries for retryable failures (429, 503, 504, connection errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Client-side request budget, to stay under the service's protection limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsSpec>,
    /// Extra hosts (besides the base URL's) that this connection may call, e.g. a
    /// Salesforce `instance_url` host. Any other host is refused before a token is sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
}

/// Authentication of a connection. Secrets must be `${env:NAME}` or `${file:PATH}`
/// references; they are resolved only when the connection is used, never printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthSpec {
    /// OAuth 2.0 token endpoint (client credentials or refresh-token grant), with the
    /// token cached and refreshed before it expires.
    Oauth2(OAuth2Spec),
    /// A static bearer token (tests and simple APIs).
    Bearer(BearerSpec),
    /// No authentication.
    None(EmptySpec),
}

/// An empty settings object (`none: {}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptySpec {}

/// OAuth 2.0 settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Spec {
    /// The grant to use.
    #[serde(default)]
    pub grant: OAuth2Grant,
    /// Token endpoint, e.g.
    /// `https://login.microsoftonline.com/${env:TENANT_ID}/oauth2/v2.0/token`.
    pub token_url: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret: a `${env:NAME}` or `${file:PATH}` reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Refresh token for delegated (App+User) access, as Partner Center referrals
    /// require: a `${env:NAME}` or `${file:PATH}` reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Scope, e.g. `https://contoso.crm.dynamics.com/.default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Resource (audience) for v1 endpoints, e.g. `https://api.partner.microsoft.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// The OAuth 2.0 grant type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuth2Grant {
    /// `client_credentials` (Dataverse, Salesforce, webhook registration).
    #[default]
    ClientCredentials,
    /// `refresh_token` (Partner Center referrals: delegated access).
    RefreshToken,
}

/// A static bearer token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BearerSpec {
    /// The token: a `${env:NAME}` or `${file:PATH}` reference.
    pub token: String,
}

/// A client-side request budget.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Most requests per window (Dataverse: 6000 per 5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u32>,
    /// The sliding window for `requests` (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
    /// Most requests in flight at once (Dataverse: 52).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<u32>,
}

/// The local state store.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    /// Path of the SQLite file, relative to the project folder
    /// (default `.cosync/state.db`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// How long run records and finished events are kept (default `30d`):
    /// `cosync serve` deletes older ones at start-up and then hourly. Queued
    /// events and dead letters are kept however old. Must be more than zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_runs: Option<Duration>,
}

/// Settings of the sync service (`cosync serve`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Address to listen on (default `127.0.0.1:8080`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The public URL Partner Center posts webhooks to (what `cosync webhooks
    /// register` registers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Largest accepted webhook body in bytes (default 65536).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// Records processed in parallel (events of one record are always serial;
    /// default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// Retries of a failed event before it goes to the dead-letter list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Hosts the webhook signing certificate may be fetched from
    /// (`x-ms-certificate-url`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_hosts: Vec<String>,
    /// How often CRM changes are polled (default `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<Duration>,
    /// The mirror of CRM records the service read or wrote, which saves a
    /// steady-state change the find, the lookups and the re-read of the CRM
    /// record. Writes to a record read from the mirror are conditional on its
    /// version, so a stale copy is never written over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorSpec>,
    /// The key Dataverse sends with its webhooks (a service endpoint with the
    /// WebhookKey auth type, registered on the watched tables): `${env:NAME}` or
    /// `${file:PATH}`. With it, `POST /webhooks/dataverse?code=KEY` takes CRM
    /// changes as they happen; without it, that endpoint answers 404 and
    /// polling is the only CRM change source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataverse_webhook_key: Option<String>,
}

/// Bounds of the record mirror.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MirrorSpec {
    /// How long a mirrored record is trusted (default `10m`; `0s` turns the
    /// mirror off and every run reads the CRM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Most records held (default 100000); the oldest go first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u32>,
}

/// Behaviour of the sync.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncSpec {
    /// Largest size of the CRM Audit field in characters; older lines are dropped
    /// (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_max_chars: Option<u32>,
    /// Conflict policy for fields whose mapping row names none (default `newest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<super::common::ConflictPolicy>,
}
