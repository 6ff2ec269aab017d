//! Field-mapping tables and value maps: how a referral and a CRM record correspond,
//! row by row, in both directions.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{ConflictPolicy, Direction, Side};

/// A field-mapping table: one Partner Center entity linked with one CRM entity.
///
/// ```yaml
/// mapping: referral-opportunity
/// partner_center: { connector: partner_center, entity: referral }
/// crm: { connector: dynamics365, entity: opportunity }
/// fields:
///   - { partner_center: $.name, crm: name, type: string, required: true }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// The table's name, used by `map`, `diff`, `create` and `update` steps.
    pub mapping: String,
    /// What the table maps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Partner Center side: connector and entity.
    pub partner_center: EntityRef,
    /// The CRM side: connector and entity.
    pub crm: EntityRef,
    /// How a referral and a CRM record point at each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkSpec>,
    /// Conflict policy for rows that name none (default `newest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<ConflictPolicy>,
    /// The rows.
    pub fields: Vec<FieldRow>,
}

/// A connector and one of its entities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityRef {
    /// Connector name.
    pub connector: String,
    /// Entity name in that connector.
    pub entity: String,
}

/// The fields that carry the link between the two records in the systems themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// CRM field holding the referral id ("Referral Identifier").
    pub crm: String,
    /// JSONPath of the referral field holding the CRM record id
    /// (`$.externalReferenceId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_center: Option<String>,
}

/// One path or several (a composite key such as `[$.status, $.substatus]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single path or field.
    One(String),
    /// Several paths or fields read and written together.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The paths as a slice-like list.
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }

    /// True for composite (several) paths.
    pub fn is_composite(&self) -> bool {
        matches!(self, OneOrMany::Many(v) if v.len() > 1)
    }
}

/// One row of a mapping table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldRow {
    /// A label for the row, used in diffs, the audit trail and diagnostics
    /// (defaults to the CRM field name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// JSONPath (RFC 9535) into the referral, e.g. `$.details.dealValue`, or a list
    /// of paths for a composite value. `[*]` reads a list:
    /// `$.details.requirements.solutions[*].id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_center: Option<OneOrMany>,
    /// CRM field name (or a list of fields for a composite value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm: Option<OneOrMany>,
    /// The value's type; drives coercion and comparison.
    #[serde(rename = "type", default)]
    pub field_type: FieldType,
    /// Which way the row syncs (default `both`).
    #[serde(default)]
    pub direction: Direction,
    /// A side owned by the sync: users' edits on it are never synced back (Referral
    /// Identifier, Referral Link and Audit are `read_only: crm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<Side>,
    /// Name of a value map translating values between the sides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_map: Option<String>,
    /// Resolves a reference on the CRM side (currency code to
    /// `transactioncurrencyid`, customer to account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<LookupSpec>,
    /// A computed value (template) for the side this row writes to, when there is no
    /// source path: `"https://partner.microsoft.com/referrals/{{ record.id }}"`.
    /// Variables: `record` (the source record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Template applied to the value on its way to the CRM. Variables: `value`,
    /// `record`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// Template applied to the value on its way to Partner Center (the inverse of
    /// `transform`). Variables: `value`, `record`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse: Option<String>,
    /// For `list` and `multi_option` rows whose one side is text: the separator used
    /// to join the values into it and split them back (default `,`; Salesforce
    /// multi-select picklists use `;`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// Value written when the source has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "serde_json::Value")]
    pub default: Option<serde_json::Value>,
    /// The source must have a value; otherwise the projection fails with a clear
    /// error (e.g. "Solution ID is required"). `true` in both directions, or only
    /// `to_crm` / `to_partner_center`.
    #[serde(default)]
    pub required: Required,

    /// Values that count as "no value" for this row, so `required` and `default`
    /// apply to them: e.g. `blank: [0]` for a deal value that must not be 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub blank: Vec<serde_json::Value>,
    /// Message used when a required value is missing.

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who wins when both sides changed this field since the last sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<ConflictPolicy>,
}

impl FieldRow {
    /// The row's label: its `name`, else the CRM field(s), else the Partner Center path.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match (&self.crm, &self.partner_center) {
            (Some(c), _) => c.items().join("+"),
            (None, Some(p)) => p.items().join("+"),
            (None, None) => "(unnamed)".to_string(),
        }
    }

    /// The direction after `read_only` is taken into account.
    pub fn effective_direction(&self) -> Direction {
        match self.read_only {
            Some(Side::Crm) => Direction::ToCrm,
            Some(Side::PartnerCenter) => Direction::ToPartnerCenter,
            None => self.direction,
        }
    }
}

/// Value types of mapped fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Text.
    #[default]
    String,
    /// A number (integer or decimal).
    Number,
    /// A decimal amount, compared without float drift (`1000` equals `"1000.00"`).
    Money,
    /// A calendar date (`YYYY-MM-DD`); Partner Center datetimes are cut to their UTC
    /// date.
    Date,
    /// A point in time (ISO 8601, normalised to UTC).
    Datetime,
    /// True or false.
    Bool,
    /// One value of a picklist.
    Option,
    /// Several values of a picklist (Dataverse multi-select: comma-separated codes).
    MultiOption,
    /// A reference to another record, resolved by `lookup`.
    Lookup,
    /// A list of values (e.g. solution ids).
    List,
}

impl FieldType {
    /// The YAML spelling of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Money => "money",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Bool => "bool",
            FieldType::Option => "option",
            FieldType::MultiOption => "multi_option",
            FieldType::Lookup => "lookup",
            FieldType::List => "list",
        }
    }
}

/// Resolves a value into a reference to another CRM record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupSpec {
    /// Connector to search (default: the mapping's CRM connector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// Entity to search, e.g. `transactioncurrency` or `account`.
    pub entity: String,
    /// Field equalities that identify the record; values are templates over `value`
    /// and `record`, e.g. `{ isocurrencycode: "{{ value }}" }`.
    #[serde(rename = "match")]
    pub match_fields: BTreeMap<String, String>,
    /// Field of the found record used as the reference (default: the entity's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returns: Option<String>,
    /// Field of the referenced record that gives the value back on the way to
    /// Partner Center (e.g. `isocurrencycode`); without it the row is one-way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse: Option<String>,
    /// Create the record when none matches, with these field templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<BTreeMap<String, String>>,
}

/// A named two-way value table, e.g. `inviteContext.assistanceRequestCode` <->
/// "How can Microsoft help?" option values.
///
/// ```yaml
/// value_map: assistance-request-code
/// enum: assistance_request_code
/// entries:
///   - { partner_center: GeneralOrOther, crm: 100000005 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueMapSpec {
    /// The value map's name, used by mapping rows.
    pub value_map: String,
    /// What the values mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A known Partner Center enumeration this map must cover completely (checked by
    /// `cosync validate`). Inferred from the rows that use the map when absent.
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    pub covers: Option<KnownEnum>,
    /// The pairs. A value may appear on several entries only if all but one are
    /// one-way, so that every direction has exactly one answer.
    pub entries: Vec<ValueMapEntry>,
    /// Values used when a value has no entry; without one, an unmapped value is an
    /// error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ValueMapDefault>,
}

/// One pair of a value map. Composite values are lists (`[Closed, Won]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueMapEntry {
    /// The Partner Center value (or list of values for a composite row).
    #[schemars(with = "serde_json::Value")]
    pub partner_center: serde_json::Value,
    /// The CRM value (or list of values for a composite row).
    #[schemars(with = "serde_json::Value")]
    pub crm: serde_json::Value,
    /// Which way this pair applies (default `both`).
    #[serde(default)]
    pub direction: Direction,
}

/// Fallback values of a value map, per target side.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueMapDefault {
    /// Written to Partner Center when a CRM value has no entry (`null` is a valid
    /// default: the field is cleared).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "serde_json::Value")]
    pub partner_center: Option<serde_json::Value>,
    /// Written to the CRM when a Partner Center value has no entry (`null` is a valid
    /// default: the field is cleared).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "serde_json::Value")]
    pub crm: Option<serde_json::Value>,
}

/// Partner Center enumerations whose values cosync knows (domain.md §1.4, §1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KnownEnum {
    /// `status`: None, New, Active, Closed.
    ReferralStatus,
    /// `substatus`: None, Pending, Received, Accepted, Won, Lost, Declined, Expired.
    ReferralSubstatus,
    /// The allowed `[status, substatus]` pairs (New/Pending ... Closed/Expired).
    ReferralStatusSubstatus,
    /// `inviteContext.assistanceRequestCode` ("How can Microsoft help?").
    AssistanceRequestCode,
    /// `salesStage`: Qualify, Develop, Propose, Close.
    SalesStage,
    /// `type`: Independent, Shared.
    ReferralType,
    /// `qualification`: None, Direct, MarketingQualified, SalesQualified.
    ReferralQualification,
    /// `customerProfile.size`.
    CustomerSize,
}

/// Deserialises a present value (even `null`) as `Some`; absence stays `None`
/// through `#[serde(default)]`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// When a row's source value is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Required {
    /// `true`: in every direction the row syncs; `false`: never.
    Always(bool),
    /// Only when projecting towards one side.
    Towards(RequiredTowards),
}

impl Default for Required {
    fn default() -> Self {
        Required::Always(false)
    }
}

/// A direction in which a value is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequiredTowards {
    /// Required when projecting onto the CRM.
    ToCrm,
    /// Required when projecting onto Partner Center (e.g. solution ids for a
    /// co-sell referral).
    ToPartnerCenter,
}

impl Required {
    /// True when a value is required when projecting onto `target`.
    pub fn towards(self, target: Side) -> bool {
        match self {
            Required::Always(b) => b,
            Required::Towards(RequiredTowards::ToCrm) => target == Side::Crm,
            Required::Towards(RequiredTowards::ToPartnerCenter) => target == Side::PartnerCenter,
        }
    }
}
