//! Flow test files: given a trigger event and the records that exist in each
//! system, expect writes, no writes, a run status and step outputs. `cosync test`
//! runs them offline.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::flow::RunStatus;

/// A flow test file.
///
/// ```yaml
/// test: partner-center-to-dynamics365
/// flow: partner-center-to-dynamics365
/// cases:
///   - name: a new shared referral creates an opportunity
///     trigger: { event: referral-created, resource_id: 3b1c... }
///     given:
///       partner_center: { referral: [ { file: fixtures/referral-new.json } ] }
///     expect:
///       writes:
///         - { connector: dynamics365, entity: opportunity, action: create,
///             fields: { name: Contoso migration } }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowTestSpec {
    /// The test suite's name.
    pub test: String,
    /// The flow under test.
    pub flow: String,
    /// What the suite covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Records present in every case (cases add to them).
    #[serde(default)]
    pub given: Given,
    /// Results of `call` operations in every case: connector → operation → result.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, BTreeMap<String, serde_json::Value>>")]
    pub calls: Calls,
    /// The cases.
    pub cases: Vec<TestCase>,
}

/// Records existing before the run: connector -> entity -> records.
pub type Given = BTreeMap<String, BTreeMap<String, Vec<RecordSource>>>;

/// Results of `call` operations: connector -> operation -> result.
pub type Calls = BTreeMap<String, BTreeMap<String, serde_json::Value>>;

/// A record written inline, or loaded from a JSON file (relative to the test file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RecordSource {
    /// `{ file: fixtures/referral.json }`: a JSON object, or an array of objects.
    File(FileRef),
    /// The record's fields.
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    Inline(serde_json::Map<String, serde_json::Value>),
}

/// A reference to a JSON fixture file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// Path relative to the test file.
    pub file: String,
}

/// One test case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What the case checks (shown in the report).
    pub name: String,
    /// The trigger's variables as the flow sees them (`trigger.*`), e.g.
    /// `{ event: referral-updated, resource_id: ... }` or `{ record: {...} }`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub trigger: serde_json::Map<String, serde_json::Value>,
    /// Records existing in each system for this case, added to the suite's `given`.
    #[serde(default)]
    pub given: Given,
    /// Results of `call` operations for this case: connector → operation → result
    /// (added to the suite's `calls`; an operation not listed returns `{}`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, BTreeMap<String, serde_json::Value>>")]
    pub calls: Calls,
    /// The time `now()` returns during the run (RFC 3339), for stable expectations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
    /// What must happen.
    pub expect: Expectation,
}

/// What a case expects.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The run's final status (default `succeeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// Text the run's error or terminate message must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Writes that must happen, in order (each matched by connector, entity,
    /// action and the listed fields).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<ExpectedWrite>,
    /// Connectors that must receive no write at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_writes: Vec<String>,
    /// Step outputs that must equal these values (by step id).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub outputs: BTreeMap<String, serde_json::Value>,
}

/// One expected write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedWrite {
    /// Connector written to.
    pub connector: String,
    /// Entity written to (absent for `call`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// The kind of write.
    pub action: WriteAction,
    /// Operation name, for `call`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Fields that must be written with these values (others may be written too,
    /// unless `exact: true`). Keys are field names, or JSON pointers for nested
    /// Partner Center fields (`/details/dealValue`). A value `"~any"` matches any
    /// non-null value; `"~contains TEXT"` matches text containing TEXT.

    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Fields that must not be written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
    /// Only the listed fields may be written.
    #[serde(default)]
    pub exact: bool,
}

/// Kinds of write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteAction {
    /// A new record.
    Create,
    /// Changed fields of an existing record.
    Update,
    /// Create-or-update.
    Upsert,
    /// A named operation.
    Call,
}
