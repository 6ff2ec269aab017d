//! Connectors: the services cosync talks to, behind the interpreter's effects
//! boundary ([`crate::runtime::ConnectorSet`]).
//!
//! - [`memory`]: records in memory (`cosync test`, `--fixtures`).
//! - [`HttpConnectorSet`]: the real services over HTTP, one `Connector` per
//!   configured connector, built by the kind's constructor in [`registry`]:
//!   `partner_center`, `dataverse`, `salesforce` and the declarative `http` kind.
//!   They all go through one HTTP layer (`http.rs`: auth, retries, budget,
//!   allow-list, redaction).

mod auth;
mod budget;
mod dataverse;
mod dataverse_ops;
mod declarative;
mod guard;
mod http;
mod json_patch;
pub mod memory;
mod odata;
mod operations;
mod partner_center;
mod partner_center_webhooks;
pub mod registry;
mod retry;
mod salesforce;
mod salesforce_ops;
pub mod secrets;
mod set;
mod support;
mod wire;

pub use set::{ConnectorConfigError, HttpConnectorSet, SandboxEndpoints, pull_metadata};

use serde_json::Value;

use crate::runtime::connectors::{BoxFuture, ConnectorError, Request};

/// One connector's implementation: what the set dispatches a request to.
pub(crate) trait Connector: Send + Sync {
    /// Executes one request addressed to this connector.
    fn execute<'a>(&'a self, request: Request) -> BoxFuture<'a, Result<Value, ConnectorError>>;

    /// Entity metadata (field names, types, picklist values) of `entities`, shaped
    /// like the `entities:` section of a connector definition.
    fn pull_metadata<'a>(
        &'a self,
        entities: &'a [String],
    ) -> BoxFuture<'a, Result<Value, ConnectorError>>;
}
