//! Connector definitions: which kind of service a connector talks to, its entities
//! and fields, and (for the declarative `http` kind) its operations as request
//! templates.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A connector definition file.
///
/// ```yaml
/// connector: dynamics365
/// kind: dataverse
/// entities:
///   opportunity:
///     path: opportunities
///     key: opportunityid
///     fields:
///       name: { type: string, required: true }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSpec {
    /// The connector's name, used by flows and mappings (`connector: dynamics365`).
    pub connector: String,
    /// What this connector is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The built-in protocol this connector speaks.
    pub kind: ConnectorKind,
    /// API version in paths (Dataverse `v9.2`, Salesforce `v62.0`); defaults per kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// The record types this connector reads and writes, by name.
    #[serde(default)]
    pub entities: BTreeMap<String, EntitySpec>,
    /// Named operations as request templates. Required for the `http` kind; other
    /// kinds may add operations the built-in ones do not cover.
    #[serde(default)]
    pub operations: BTreeMap<String, OperationSpec>,
}

/// The built-in connector kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    /// Partner Center referrals API v1.0 plus the webhook registration API.
    PartnerCenter,
    /// Dynamics 365 / Dataverse Web API (OData v4).
    Dataverse,
    /// Salesforce REST API and SOQL.
    Salesforce,
    /// A declarative HTTP API: every operation is a request template.
    Http,
}

impl ConnectorKind {
    /// The YAML spelling of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::PartnerCenter => "partner_center",
            ConnectorKind::Dataverse => "dataverse",
            ConnectorKind::Salesforce => "salesforce",
            ConnectorKind::Http => "http",
        }
    }
}

/// One record type of a connector.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitySpec {
    /// What the entity is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Collection path: Dataverse entity set (`opportunities`), Salesforce sObject
    /// (`Opportunity`), Partner Center resource (`engagements/referrals`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The primary key field (`opportunityid`, `Id`, `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The field holding the last modification time, used for watermark polling and
    /// for the `newest` conflict policy (`modifiedon`, `SystemModstamp`,
    /// `updatedDateTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_field: Option<String>,
    /// The field holding the creation time, which tells a polled change that
    /// created the record from one that updated it (default `createdon` for
    /// Dataverse, `CreatedDate` for Salesforce).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_field: Option<String>,
    /// The fields of the record, by name. When present, mapping tables are checked
    /// against them.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
    /// For the `http` kind: which named operation implements each action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<EntityActions>,
}

/// A field of an entity.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The field's type.
    #[serde(rename = "type")]
    pub field_type: super::mapping::FieldType,
    /// Human label (e.g. "How can Microsoft help?").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The field must have a value when a record is created.
    #[serde(default)]
    pub required: bool,
    /// The service does not accept writes to this field.
    #[serde(default)]
    pub read_only: bool,
    /// Longest accepted text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Allowed values of an option / multi-option field (picklist values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<serde_json::Value>,
    /// For lookups: the entity the field points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Which operations implement the standard actions of an `http` entity.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityActions {
    /// Operation that reads one record by key (input `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get: Option<String>,
    /// Operation that finds records (input `where`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find: Option<String>,
    /// Operation that creates a record (input `record`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<String>,
    /// Operation that updates a record (inputs `key`, `changes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
}

/// A request template: one call of a declarative operation. Strings are minijinja
/// templates over the operation's inputs (`{{ key }}`), the connection
/// (`{{ connection.base_url }}`) and, while paging, `{{ page }}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationSpec {
    /// What the operation does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// HTTP method.
    pub method: HttpMethod,
    /// Path appended to the connection's base URL, e.g. `/deals/{{ key }}`.
    pub path: String,
    /// Names of the inputs callers must pass in `with:`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// Query parameters (values are templates).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Request headers (values are templates).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body. Strings inside are templates; a string that is exactly one
    /// `{{ expression }}` keeps the expression's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "serde_json::Value")]
    pub body: Option<serde_json::Value>,
    /// How to read the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseSpec>,
    /// How to follow pages of results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<PaginationSpec>,
    /// How to classify error answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorRuleSpec>,
}

/// HTTP methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

/// How to read an answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseSpec {
    /// JSONPath (RFC 9535) selecting the result in the body, e.g. `$.data` or
    /// `$.results[*]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    /// JSONPath of the new record's id in a create answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// How to follow pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PaginationSpec {
    /// The body carries the URL of the next page (e.g. `$.paging.next`); it must be on
    /// the connection's host.
    NextLink {
        /// JSONPath of the next page's URL.
        path: String,
    },
    /// The body carries a cursor passed back as a query parameter.
    Cursor {
        /// JSONPath of the cursor in the body.
        path: String,
        /// Query parameter that takes the cursor.
        param: String,
    },
    /// Offset paging: `param` grows by `size` until a page has fewer items.
    Offset {
        /// Query parameter holding the offset.
        param: String,
        /// Items per page.
        size: u32,
    },
}

/// Maps error answers to error kinds the engine understands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorRuleSpec {
    /// HTTP status this rule matches.
    pub status: u16,
    /// Optional JSONPath that must find something in the error body for the rule to
    /// match (e.g. `$[?@.errorCode == 'DUPLICATE_VALUE']`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// What the error means.
    pub kind: ErrorKind,
    /// JSONPath of the message in the error body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Error kinds of connector calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The record does not exist.
    NotFound,
    /// Optimistic concurrency failed: re-read and re-diff.
    Conflict,
    /// Throttled or over quota: retried after a delay.
    Throttled,
    /// A temporary failure: retried.
    Transient,
    /// The request was wrong: not retried.
    Invalid,
    /// Credentials were refused.
    Unauthorized,
}
