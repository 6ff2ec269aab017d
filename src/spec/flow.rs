//! Flows: a trigger and steps, named after the Power Automate actions so a flow can
//! be ported one to one.
//!
//! Every step is a mapping whose *kind key* says what it does (`get:`, `find:`,
//! `create:`, `update:`, `upsert:`, `call:`, `map:`, `diff:`, `scope:`, `if:`,
//! `switch:`, `foreach:`, `until:`, `set:`, `terminate:`). For actions and mapping
//! steps the kind key's value is the step id, by which later steps read its output
//! (`get: referral` ... `{{ referral.id }}`).
//!
//! Values are minijinja: *expression* fields (`if`, `from`, `changes`, ...) take a
//! bare expression (`opportunity is none`); *template* fields take text with
//! `{{ ... }}`, and a template that is exactly one `{{ expression }}` keeps the
//! expression's type (a number stays a number).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{BudgetSpec, Duration, Side};

/// A flow file.
///
/// ```yaml
/// flow: partner-center-to-dynamics365
/// trigger: { partner_center: { events: [referral-created, referral-updated] } }
/// steps:
///   - get: referral
///     connector: partner_center
///     entity: referral
///     key: "{{ trigger.resource_id }}"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowSpec {
    /// The flow's name, used by `cosync run NAME` and by test files.
    pub flow: String,
    /// What the flow does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What starts the flow. A flow without a trigger never runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerSpec>,
    /// Limits on one run (steps, calls, loop iterations, wall time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSpec>,
    /// `false` keeps the flow from being started by its trigger (it can still be
    /// run by hand with `cosync run`); e.g. the Salesforce flows in a Dynamics 365
    /// deployment. Default `true`.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// The steps, run in order.
    pub steps: Vec<Step>,
}

/// What starts a flow. Variables under `trigger.` depend on the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerSpec {
    /// Partner Center webhook events. Variables: `trigger.event`,
    /// `trigger.resource_id` (the referral id), `trigger.resource_uri`,
    /// `trigger.changed_at`.
    PartnerCenter(PartnerCenterTrigger),
    /// A record created or changed in the CRM. Variables: `trigger.record` (the
    /// changed record), `trigger.record_id`, `trigger.change` (`created`/`updated`).
    CrmChange(CrmChangeTrigger),
    /// A timer. Variables: `trigger.fired_at`.
    Schedule(ScheduleTrigger),
    /// Started by hand (`cosync run`). Variables: `trigger.inputs.<name>`.
    Manual(ManualTrigger),
}

/// Partner Center webhook trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerCenterTrigger {
    /// The webhook events that start the flow.
    pub events: Vec<PartnerCenterEvent>,
    /// The Partner Center connector (default `partner_center`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
}

/// Partner Center webhook event names (domain.md §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PartnerCenterEvent {
    /// A referral was created.
    ReferralCreated,
    /// A referral was updated.
    ReferralUpdated,
    /// A related referral (same engagement, e.g. Microsoft's side) was created.
    RelatedReferralCreated,
    /// A related referral was updated.
    RelatedReferralUpdated,
    /// A test event sent by the registration API.
    TestCreated,
}

impl PartnerCenterEvent {
    /// The wire name (`referral-created`).
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerCenterEvent::ReferralCreated => "referral-created",
            PartnerCenterEvent::ReferralUpdated => "referral-updated",
            PartnerCenterEvent::RelatedReferralCreated => "related-referral-created",
            PartnerCenterEvent::RelatedReferralUpdated => "related-referral-updated",
            PartnerCenterEvent::TestCreated => "test-created",
        }
    }
}

/// CRM change trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrmChangeTrigger {
    /// The CRM connector to watch.
    pub connector: String,
    /// The entity to watch (e.g. `opportunity`, `Opportunity`).
    pub entity: String,
    /// How changes are detected (default `poll`).
    #[serde(default)]
    pub mode: ChangeMode,
    /// Only records whose fields equal these values start the flow, e.g.
    /// `{ new_syncwithpartnercenter: true }` ("Sync with Partner Center" = Yes).
    #[serde(default, rename = "where")]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub where_fields: BTreeMap<String, serde_json::Value>,
    /// Which changes start the flow (default both).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<ChangeKind>,
    /// Poll interval (default: the server's `poll_interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// How CRM changes are detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeMode {
    /// Poll by watermark (`modifiedon` / `SystemModstamp`, id as tie-breaker).
    #[default]
    Poll,
    /// Dataverse change tracking (delta links).
    ChangeTracking,
    /// Pushed by the CRM (Dataverse service-endpoint webhook).
    Webhook,
}

/// Kinds of record change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new record.
    Created,
    /// A changed record.
    Updated,
}

/// Timer trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleTrigger {
    /// Interval between runs, e.g. `15m`.
    pub every: Duration,
}

/// Manual trigger.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualTrigger {
    /// Named inputs with a description each; read as `trigger.inputs.<name>`.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
}

/// The statuses a step can end with; `run_after` lists which of them, for the
/// preceding step, let a step run (Power Automate's "Configure run after").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Completed.
    Succeeded,
    /// Failed (an error, a `terminate: failed`, or a failed child).
    Failed,
    /// Not run (its condition was false or its predecessor did not allow it).
    Skipped,
    /// Ran past its `timeout`.
    TimedOut,
}

/// How a run (or `terminate`) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Everything that ran succeeded.
    Succeeded,
    /// A step failed and no handler caught it, or `terminate: failed`.
    Failed,
    /// Stopped on purpose (`terminate: cancelled`), e.g. a closed referral.
    Cancelled,
}

/// One step of a flow. The kind key decides the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Step {
    /// Read one record by key.
    Get(GetStep),
    /// Find records by field values.
    Find(FindStep),
    /// Create a record.
    Create(CreateStep),
    /// Update a record.
    Update(UpdateStep),
    /// Create or update a record matched by fields.
    Upsert(UpsertStep),
    /// Call any declared operation of a connector.
    Call(CallStep),
    /// Project a record through a mapping table.
    Map(MapStep),
    /// Compare a projection with the other side's record.
    Diff(DiffStep),
    /// A named group of steps.
    Scope(ScopeStep),
    /// If / else.
    If(IfStep),
    /// Branch on a value.
    Switch(SwitchStep),
    /// Repeat steps for each item of a list.
    Foreach(ForeachStep),
    /// Repeat steps until a condition holds.
    Until(UntilStep),
    /// Set variables.
    Set(SetStep),
    /// End the run.
    Terminate(TerminateStep),
}

/// Field values of a record, by field name. Strings are templates.
pub type Values = BTreeMap<String, serde_json::Value>;

macro_rules! step_struct {
    (
        $(#[$meta:meta])*
        $name:ident { $($body:tt)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($body)*
            /// A readable name, shown in run records (like a Power Automate action title).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub name: Option<String>,
            /// Statuses of the preceding step that let this step run (default
            /// `[succeeded]`); `[failed, timed_out]` makes it a handler.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub run_after: Vec<StepStatus>,
            /// Longest time this step may take before it is `timed_out`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub timeout: Option<Duration>,
        }
    };
}

step_struct! {
    /// `get: ID` — read one record by key. Output: the record.
    GetStep {
        /// The step id (later steps read the record as `{{ ID.field }}`).
        pub get: String,
        /// Connector name.
        pub connector: String,
        /// Entity name.
        pub entity: String,
        /// The record's key (template), e.g. `"{{ trigger.resource_id }}"`.
        pub key: String,
        /// Fields to read (default all).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub select: Vec<String>,
        /// `true` makes a missing record yield `none` instead of failing the step.
        #[serde(default)]
        pub optional: bool,
    }
}

step_struct! {
    /// `find: ID` — find records whose fields equal the given values. Output: the
    /// first match or `none` (or the list, with `all: true`).
    FindStep {
        /// The step id.
        pub find: String,
        /// Connector name.
        pub connector: String,
        /// Entity name.
        pub entity: String,
        /// Field equalities (values are templates), e.g.
        /// `{ new_referralidentifier: "{{ referral.id }}" }`.
        #[serde(rename = "where", default)]
        #[schemars(with = "BTreeMap<String, serde_json::Value>")]
        pub where_fields: Values,
        /// Fields to read (default all).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub select: Vec<String>,
        /// Return every match as a list instead of the first one.
        #[serde(default)]
        pub all: bool,
        /// Most records to return with `all: true`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub limit: Option<u32>,
    }
}

step_struct! {
    /// `create: ID` — create a record, from a mapping projection and/or explicit
    /// values. Output: the created record, with its key.
    CreateStep {
        /// The step id.
        pub create: String,
        /// Connector name.
        pub connector: String,
        /// Entity name.
        pub entity: String,
        /// Mapping table projecting `from` onto this entity.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mapping: Option<String>,
        /// Expression giving the source record for `mapping`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub from: Option<String>,
        /// Field values (templates), applied over the projection.
        #[serde(default)]
        #[schemars(with = "BTreeMap<String, serde_json::Value>")]
        pub values: Values,
    }
}

step_struct! {
    /// `update: ID` — write changed fields to an existing record. Output: the
    /// updated record.
    UpdateStep {
        /// The step id.
        pub update: String,
        /// Connector name.
        pub connector: String,
        /// Entity name.
        pub entity: String,
        /// The record's key (template).
        pub key: String,
        /// Expression giving the fields to write, usually a `diff` step's output.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub changes: Option<String>,
        /// Mapping table projecting `from` onto this entity (all mapped fields are
        /// written; prefer `diff` + `changes`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mapping: Option<String>,
        /// Expression giving the source record for `mapping`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub from: Option<String>,
        /// Field values (templates), applied over the changes.
        #[serde(default)]
        #[schemars(with = "BTreeMap<String, serde_json::Value>")]
        pub values: Values,
        /// Concurrency token (template), e.g. `"{{ referral.eTag }}"`; a mismatch is
        /// a conflict that re-reads and re-diffs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub if_match: Option<String>,
    }
}

step_struct! {
    /// `upsert: ID` — update the record matching `match`, or create it. Output: the
    /// record.
    UpsertStep {
        /// The step id.
        pub upsert: String,
        /// Connector name.
        pub connector: String,
        /// Entity name.
        pub entity: String,
        /// Field equalities identifying the record (templates), e.g. an external id.
        #[serde(rename = "match")]
        #[schemars(with = "BTreeMap<String, serde_json::Value>")]
        pub match_fields: Values,
        /// Mapping table projecting `from` onto this entity.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mapping: Option<String>,
        /// Expression giving the source record for `mapping`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub from: Option<String>,
        /// Field values (templates), applied over the projection.
        #[serde(default)]
        #[schemars(with = "BTreeMap<String, serde_json::Value>")]
        pub values: Values,
    }
}

step_struct! {
    /// `call: ID` — call a named operation (`WinOpportunity`, a declared `http`
    /// operation, the webhook registration API). Output: the operation's result.
    CallStep {
        /// The step id.
        pub call: String,
        /// Connector name.
        pub connector: String,
        /// Operation name.
        pub operation: String,
        /// Inputs of the operation (templates).
        #[serde(default, rename = "with")]
        #[schemars(with = "BTreeMap<String, serde_json::Value>")]
        pub with_inputs: Values,
    }
}

step_struct! {
    /// `map: ID` — project a record through a mapping table. Output: the projected
    /// record (target field names).
    MapStep {
        /// The step id.
        pub map: String,
        /// Mapping table name.
        pub mapping: String,
        /// Expression giving the source record.
        pub from: String,
        /// The side projected onto; inferred when `from` names a step that read one
        /// side of the table.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub target: Option<Side>,
    }
}

step_struct! {
    /// `diff: ID` — project `from` and compare with `to`, the target's current
    /// record. Output: only the changed fields (empty, hence false, when nothing
    /// differs).
    DiffStep {
        /// The step id.
        pub diff: String,
        /// Mapping table name.
        pub mapping: String,
        /// Expression giving the source record.
        pub from: String,
        /// Expression giving the target's current record.
        pub to: String,
        /// Expression giving the last synced values, for three-way comparison
        /// (fields changed on both sides follow their conflict policy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub base: Option<String>,
        /// The side `to` is on; inferred when `from` or `to` names a step that read
        /// one side of the table.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub target: Option<Side>,
    }
}

step_struct! {
    /// `scope: NAME` — a named group (try block); its status is the worst of its
    /// steps, so a following step with `run_after: [failed]` acts as catch.
    ScopeStep {
        /// The scope's name ("Sync the lead or opportunity").
        pub scope: String,
        /// Id by which later steps read the scope's status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        /// The steps inside.
        pub steps: Vec<Step>,
    }
}

step_struct! {
    /// `if: EXPRESSION` — run `then` when the expression is true, else `else`.
    IfStep {
        /// The condition (expression), e.g. `opportunity is none and referral.type == "Shared"`.
        #[serde(rename = "if")]
        pub condition: String,
        /// Id by which later steps read which branch ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        /// Steps run when the condition is true.
        #[serde(default)]
        pub then: Vec<Step>,
        /// Steps run when it is false.
        #[serde(rename = "else", default, skip_serializing_if = "Vec::is_empty")]
        pub otherwise: Vec<Step>,
    }
}

step_struct! {
    /// `switch: EXPRESSION` — run the case whose key equals the value.
    SwitchStep {
        /// The value to branch on (expression).
        pub switch: String,
        /// Id of the step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        /// Steps per case value.
        pub cases: BTreeMap<String, Vec<Step>>,
        /// Steps when no case matches.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub default: Vec<Step>,
    }
}

step_struct! {
    /// `foreach: EXPRESSION` — run the steps once per item; the output is the list of
    /// per-item results, in input order.
    ForeachStep {
        /// The list to iterate (expression).
        pub foreach: String,
        /// Id by which later steps read the collected results.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        /// Variable name of the current item (default `item`).
        #[serde(rename = "as", default, skip_serializing_if = "Option::is_none")]
        pub item: Option<String>,
        /// Items processed at once (default 1: sequential).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub concurrency: Option<u32>,
        /// Expression collected per item (default: the body's step outputs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub collect: Option<String>,
        /// The loop body.
        pub steps: Vec<Step>,
    }
}

step_struct! {
    /// `until: EXPRESSION` — run the steps, then stop when the expression is true
    /// (at least once; at most `limit` rounds).
    UntilStep {
        /// The exit condition (expression).
        pub until: String,
        /// Id of the step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        /// Most rounds (default 60, as in Power Automate).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub limit: Option<u32>,
        /// The loop body.
        pub steps: Vec<Step>,
    }
}

step_struct! {
    /// `set: { NAME: VALUE }` — set variables, readable by later steps as `{{ NAME }}`.
    SetStep {
        /// Variable values (templates).
        #[schemars(with = "BTreeMap<String, serde_json::Value>")]
        pub set: Values,
        /// Id of the step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
    }
}

step_struct! {
    /// `terminate: STATUS` — end the run now.
    TerminateStep {
        /// How the run ends.
        pub terminate: RunStatus,
        /// Why (template), recorded in the run record and the audit trail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message: Option<String>,
        /// Id of the step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
    }
}

impl Step {
    /// The kind key (`get`, `scope`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Get(_) => "get",
            Step::Find(_) => "find",
            Step::Create(_) => "create",
            Step::Update(_) => "update",
            Step::Upsert(_) => "upsert",
            Step::Call(_) => "call",
            Step::Map(_) => "map",
            Step::Diff(_) => "diff",
            Step::Scope(_) => "scope",
            Step::If(_) => "if",
            Step::Switch(_) => "switch",
            Step::Foreach(_) => "foreach",
            Step::Until(_) => "until",
            Step::Set(_) => "set",
            Step::Terminate(_) => "terminate",
        }
    }

    /// The step's id, if it has one (actions and mapping steps always do).
    pub fn id(&self) -> Option<&str> {
        match self {
            Step::Get(s) => Some(&s.get),
            Step::Find(s) => Some(&s.find),
            Step::Create(s) => Some(&s.create),
            Step::Update(s) => Some(&s.update),
            Step::Upsert(s) => Some(&s.upsert),
            Step::Call(s) => Some(&s.call),
            Step::Map(s) => Some(&s.map),
            Step::Diff(s) => Some(&s.diff),
            Step::Scope(s) => s.id.as_deref(),
            Step::If(s) => s.id.as_deref(),
            Step::Switch(s) => s.id.as_deref(),
            Step::Foreach(s) => s.id.as_deref(),
            Step::Until(s) => s.id.as_deref(),
            Step::Set(s) => s.id.as_deref(),
            Step::Terminate(s) => s.id.as_deref(),
        }
    }

    /// The statuses of the preceding step that let this step run.
    pub fn run_after(&self) -> &[StepStatus] {
        match self {
            Step::Get(s) => &s.run_after,
            Step::Find(s) => &s.run_after,
            Step::Create(s) => &s.run_after,
            Step::Update(s) => &s.run_after,
            Step::Upsert(s) => &s.run_after,
            Step::Call(s) => &s.run_after,
            Step::Map(s) => &s.run_after,
            Step::Diff(s) => &s.run_after,
            Step::Scope(s) => &s.run_after,
            Step::If(s) => &s.run_after,
            Step::Switch(s) => &s.run_after,
            Step::Foreach(s) => &s.run_after,
            Step::Until(s) => &s.run_after,
            Step::Set(s) => &s.run_after,
            Step::Terminate(s) => &s.run_after,
        }
    }

    /// The step's display name, if given.
    pub fn name(&self) -> Option<&str> {
        match self {
            Step::Get(s) => s.name.as_deref(),
            Step::Find(s) => s.name.as_deref(),
            Step::Create(s) => s.name.as_deref(),
            Step::Update(s) => s.name.as_deref(),
            Step::Upsert(s) => s.name.as_deref(),
            Step::Call(s) => s.name.as_deref(),
            Step::Map(s) => s.name.as_deref(),
            Step::Diff(s) => s.name.as_deref(),
            Step::Scope(s) => Some(s.name.as_deref().unwrap_or(&s.scope)),
            Step::If(s) => s.name.as_deref(),
            Step::Switch(s) => s.name.as_deref(),
            Step::Foreach(s) => s.name.as_deref(),
            Step::Until(s) => s.name.as_deref(),
            Step::Set(s) => s.name.as_deref(),
            Step::Terminate(s) => s.name.as_deref(),
        }
    }

    /// Nested step lists with the key under which each sits (`steps`, `then`,
    /// `else`, `cases/<value>`, `default`).
    pub fn children(&self) -> Vec<(String, &[Step])> {
        match self {
            Step::Scope(s) => vec![("steps".into(), &s.steps[..])],
            Step::If(s) => vec![
                ("then".into(), &s.then[..]),
                ("else".into(), &s.otherwise[..]),
            ],
            Step::Switch(s) => {
                let mut v: Vec<(String, &[Step])> = s
                    .cases
                    .iter()
                    .map(|(k, steps)| {
                        (
                            format!("cases/{}", crate::source::escape_pointer(k)),
                            &steps[..],
                        )
                    })
                    .collect();
                v.push(("default".into(), &s.default[..]));
                v
            }
            Step::Foreach(s) => vec![("steps".into(), &s.steps[..])],
            Step::Until(s) => vec![("steps".into(), &s.steps[..])],
            _ => Vec::new(),
        }
    }
}

/// The kind keys of all step kinds, in the order of [`Step`]'s variants.
pub const STEP_KINDS: &[&str] = &[
    "get",
    "find",
    "create",
    "update",
    "upsert",
    "call",
    "map",
    "diff",
    "scope",
    "if",
    "switch",
    "foreach",
    "until",
    "set",
    "terminate",
];

fn enabled_default() -> bool {
    true
}
