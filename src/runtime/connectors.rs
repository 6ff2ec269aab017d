//! The effects boundary of the interpreter: a [`ConnectorSet`] executes
//! [`Request`]s (reads and writes against the systems). The HTTP connectors, the
//! in-memory set used by `cosync test`, and test doubles all implement it.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde_json::Value;

use crate::compile::ConnectorId;
pub use crate::spec::connector::ErrorKind;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One request to a connector.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Request {
    /// Read a record by key.
    Get {
        /// Connector.
        #[serde(skip)]
        connector: ConnectorId,
        /// Entity.
        entity: String,
        /// Key.
        key: String,
        /// Fields (empty: all).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        select: Vec<String>,
    },
    /// Find records by field equality.
    Find {
        /// Connector.
        #[serde(skip)]
        connector: ConnectorId,
        /// Entity.
        entity: String,
        /// Field equalities.
        #[serde(rename = "where")]
        where_fields: Vec<(String, Value)>,
        /// Fields (empty: all).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        select: Vec<String>,
        /// Most records.
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Create a record.
    Create {
        /// Connector.
        #[serde(skip)]
        connector: ConnectorId,
        /// Entity.
        entity: String,
        /// Fields.
        record: Value,
    },
    /// Write fields of a record (keys are field names, or JSON pointers for nested
    /// Partner Center fields).
    Update {
        /// Connector.
        #[serde(skip)]
        connector: ConnectorId,
        /// Entity.
        entity: String,
        /// Key.
        key: String,
        /// Fields to write.
        changes: Value,
        /// Concurrency token.
        #[serde(skip_serializing_if = "Option::is_none")]
        if_match: Option<String>,
    },
    /// Update the record matching `match_fields`, or create it.
    Upsert {
        /// Connector.
        #[serde(skip)]
        connector: ConnectorId,
        /// Entity.
        entity: String,
        /// Identifying fields.
        #[serde(rename = "match")]
        match_fields: Vec<(String, Value)>,
        /// Fields.
        record: Value,
    },
    /// A named operation.
    Call {
        /// Connector.
        #[serde(skip)]
        connector: ConnectorId,
        /// Operation.
        operation: String,
        /// Inputs.
        inputs: Value,
    },
}

impl Request {
    /// The connector addressed.
    pub fn connector(&self) -> ConnectorId {
        match self {
            Request::Get { connector, .. }
            | Request::Find { connector, .. }
            | Request::Create { connector, .. }
            | Request::Update { connector, .. }
            | Request::Upsert { connector, .. }
            | Request::Call { connector, .. } => *connector,
        }
    }

    /// The action name (`get`, `create`, ...).
    pub fn action(&self) -> &'static str {
        match self {
            Request::Get { .. } => "get",
            Request::Find { .. } => "find",
            Request::Create { .. } => "create",
            Request::Update { .. } => "update",
            Request::Upsert { .. } => "upsert",
            Request::Call { .. } => "call",
        }
    }
}

/// A failed connector request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What the service said (secrets redacted).
    pub message: String,
    /// HTTP status, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The run read data that has changed since (a write on a record served from
    /// a cache was refused by its concurrency token): the interpreter stops the
    /// run at once, without running failure handlers, so that it can be run
    /// again on fresh reads.
    #[serde(skip)]
    pub stale: bool,
}

impl ConnectorError {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ConnectorError {
        ConnectorError {
            kind,
            message: message.into(),
            status: None,
            stale: false,
        }
    }

    /// The same error, marked as a stale read (see [`ConnectorError::stale`]).
    pub fn into_stale(self) -> ConnectorError {
        ConnectorError {
            stale: true,
            ..self
        }
    }
}

/// Executes connector requests. Implementations must be safe to call
/// concurrently (a `foreach` with concurrency issues requests in parallel).
pub trait ConnectorSet: Send + Sync {
    /// Executes one request: `get` → the record, `find` → a list, `create` /
    /// `update` / `upsert` → the record as stored, `call` → the operation's result.
    fn execute<'a>(&'a self, request: Request) -> BoxFuture<'a, Result<Value, ConnectorError>>;

    /// True when `call` of `operation` on `connector` changes data (so `--dry-run`
    /// plans it instead of running it).
    fn writes(&self, connector: ConnectorId, operation: &str) -> bool;
}
