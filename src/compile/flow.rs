//! Flows, compiled: steps with resolved connector and mapping ids, compiled
//! expressions and templates, inferred map/diff targets and budget limits.

use std::collections::HashMap;

use super::{CompileError, CompiledMapping, ConnectorId, FlowId, MappingId, StepId};
use crate::expr::value::{CompiledText, CompiledValue, Env};
use crate::spec::common::Side;
use crate::spec::flow::{FlowSpec, RunStatus, Step, StepStatus, TriggerSpec};

/// Default most steps per run.
pub const MAX_STEPS: u64 = 1_000;
/// Default most connector calls per run.
pub const MAX_CALLS: u64 = 200;
/// Default most loop iterations per run.
pub const MAX_ITERATIONS: u64 = 10_000;
/// Default wall-clock limit of a run.
pub const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// Default most rounds of an `until` loop (as in Power Automate).
pub const UNTIL_LIMIT: u32 = 60;

/// Limits on one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most steps.
    pub max_steps: u64,
    /// Most connector calls.
    pub max_calls: u64,
    /// Most loop iterations.
    pub max_iterations: u64,
    /// Wall-clock limit.
    pub timeout: std::time::Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_steps: MAX_STEPS,
            max_calls: MAX_CALLS,
            max_iterations: MAX_ITERATIONS,
            timeout: RUN_TIMEOUT,
        }
    }
}

/// A compiled flow.
#[derive(Debug, Clone)]
pub struct CompiledFlow {
    /// Id.
    pub id: FlowId,
    /// Name.
    pub name: String,
    /// Trigger.
    pub trigger: Option<TriggerSpec>,
    /// Started by its trigger (`enabled: false` flows run only by hand).
    pub enabled: bool,

    /// Limits.
    pub budget: Budget,
    /// Steps.
    pub steps: Vec<CompiledStep>,
}

/// A compiled step.
#[derive(Debug, Clone)]
pub struct CompiledStep {
    /// Pre-order index.
    pub id: StepId,
    /// The name later steps read its output by, if any.
    pub output: Option<String>,
    /// Display name.
    pub name: String,
    /// Statuses of the previous step that let it run.
    pub run_after: Vec<StepStatus>,
    /// Time limit.
    pub timeout: Option<std::time::Duration>,
    /// What it does.
    pub kind: StepKind,
}

/// A projection through a mapping onto a side.
#[derive(Debug, Clone)]
pub struct Projection {
    /// The table.
    pub mapping: MappingId,
    /// The side projected onto.
    pub target: Side,
    /// The source record.
    pub from: CompiledText,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// Read one record.
    Get {
        /// Connector.
        connector: ConnectorId,
        /// Entity.
        entity: String,
        /// Key.
        key: CompiledText,
        /// Fields.
        select: Vec<String>,
        /// Missing yields none.
        optional: bool,
    },
    /// Find records.
    Find {
        /// Connector.
        connector: ConnectorId,
        /// Entity.
        entity: String,
        /// Equalities.
        where_fields: Vec<(String, CompiledValue)>,
        /// Fields.
        select: Vec<String>,
        /// All matches.
        all: bool,
        /// Most matches.
        limit: Option<u32>,
    },
    /// Create a record.
    Create {
        /// Connector.
        connector: ConnectorId,
        /// Entity.
        entity: String,
        /// Projection.
        projection: Option<Projection>,
        /// Values.
        values: Vec<(String, CompiledValue)>,
    },
    /// Update a record.
    Update {
        /// Connector.
        connector: ConnectorId,
        /// Entity.
        entity: String,
        /// Key.
        key: CompiledText,
        /// Changes expression.
        changes: Option<CompiledText>,
        /// Projection.
        projection: Option<Projection>,
        /// Values.
        values: Vec<(String, CompiledValue)>,
        /// Concurrency token.
        if_match: Option<CompiledText>,
    },
    /// Create or update.
    Upsert {
        /// Connector.
        connector: ConnectorId,
        /// Entity.
        entity: String,
        /// Match fields.
        match_fields: Vec<(String, CompiledValue)>,
        /// Projection.
        projection: Option<Projection>,
        /// Values.
        values: Vec<(String, CompiledValue)>,
    },
    /// Call an operation.
    Call {
        /// Connector.
        connector: ConnectorId,
        /// Operation.
        operation: String,
        /// Inputs.
        inputs: Vec<(String, CompiledValue)>,
    },
    /// Project.
    Map(Projection),
    /// Diff.
    Diff {
        /// Projection of the source.
        projection: Projection,
        /// The target's current record.
        to: CompiledText,
        /// Last synced values.
        base: Option<CompiledText>,
    },
    /// Group.
    Scope(Vec<CompiledStep>),
    /// If/else.
    If {
        /// Condition.
        condition: CompiledText,
        /// Then.
        then: Vec<CompiledStep>,
        /// Else.
        otherwise: Vec<CompiledStep>,
    },
    /// Switch.
    Switch {
        /// Value.
        value: CompiledText,
        /// Cases.
        cases: Vec<(String, Vec<CompiledStep>)>,
        /// Default.
        default: Vec<CompiledStep>,
    },
    /// Loop over items.
    Foreach {
        /// Items.
        items: CompiledText,
        /// Item variable.
        var: String,
        /// Parallel items.
        concurrency: usize,
        /// Collected per item.
        collect: Option<CompiledText>,
        /// Body.
        steps: Vec<CompiledStep>,
    },
    /// Loop until.
    Until {
        /// Exit condition.
        condition: CompiledText,
        /// Most rounds.
        limit: u32,
        /// Body.
        steps: Vec<CompiledStep>,
    },
    /// Set variables.
    Set(Vec<(String, CompiledValue)>),
    /// End the run.
    Terminate {
        /// Status.
        status: RunStatus,
        /// Message.
        message: Option<CompiledText>,
    },
}

impl StepKind {
    /// The kind key.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Get { .. } => "get",
            StepKind::Find { .. } => "find",
            StepKind::Create { .. } => "create",
            StepKind::Update { .. } => "update",
            StepKind::Upsert { .. } => "upsert",
            StepKind::Call { .. } => "call",
            StepKind::Map(_) => "map",
            StepKind::Diff { .. } => "diff",
            StepKind::Scope(_) => "scope",
            StepKind::If { .. } => "if",
            StepKind::Switch { .. } => "switch",
            StepKind::Foreach { .. } => "foreach",
            StepKind::Until { .. } => "until",
            StepKind::Set(_) => "set",
            StepKind::Terminate { .. } => "terminate",
        }
    }
}

/// Context for compiling flows.
pub(super) struct FlowCx<'a> {
    pub env: Env,
    pub connectors: &'a HashMap<String, ConnectorId>,
    pub mappings: &'a HashMap<String, MappingId>,
    pub mapping_specs: &'a [CompiledMapping],
}

struct Compiler<'a> {
    cx: &'a FlowCx<'a>,
    trigger_connector: Option<ConnectorId>,
    step_connector: HashMap<String, ConnectorId>,
    next: usize,
}

fn err<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> CompileError + '_ {
    move |e| CompileError(format!("{what}: {e}"))
}

/// Compiles a flow.
pub(super) fn compile_flow(
    cx: &FlowCx<'_>,
    id: FlowId,
    spec: &FlowSpec,
) -> Result<CompiledFlow, CompileError> {
    let trigger_connector = match &spec.trigger {
        Some(TriggerSpec::CrmChange(t)) => cx.connectors.get(&t.connector).copied(),
        _ => None,
    };
    let mut c = Compiler {
        cx,
        trigger_connector,
        step_connector: HashMap::new(),
        next: 0,
    };
    let steps = c.steps(&spec.steps)?;
    let mut budget = Budget::default();
    if let Some(b) = &spec.budget {
        budget.max_steps = b.max_steps.unwrap_or(budget.max_steps);
        budget.max_calls = b.max_calls.unwrap_or(budget.max_calls);
        budget.max_iterations = b.max_iterations.unwrap_or(budget.max_iterations);
        budget.timeout = b
            .timeout
            .as_ref()
            .and_then(|d| d.to_std())
            .unwrap_or(budget.timeout);
    }
    Ok(CompiledFlow {
        id,
        name: spec.flow.clone(),
        trigger: spec.trigger.clone(),
        enabled: spec.enabled,
        budget,
        steps,
    })
}

impl Compiler<'_> {
    fn connector(&self, name: &str) -> Result<ConnectorId, CompileError> {
        self.cx
            .connectors
            .get(name)
            .copied()
            .ok_or_else(|| CompileError(format!("unknown connector `{name}`")))
    }

    fn mapping(&self, name: &str) -> Result<MappingId, CompileError> {
        self.cx
            .mappings
            .get(name)
            .copied()
            .ok_or_else(|| CompileError(format!("unknown mapping `{name}`")))
    }

    fn tmpl(&self, t: &str) -> Result<CompiledText, CompileError> {
        CompiledText::template(self.cx.env, t).map_err(err("template"))
    }

    fn expr(&self, t: &str) -> Result<CompiledText, CompileError> {
        CompiledText::expression(self.cx.env, t).map_err(err("expression"))
    }

    fn values(
        &self,
        v: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<Vec<(String, CompiledValue)>, CompileError> {
        v.iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    CompiledValue::compile(self.cx.env, v).map_err(err("template"))?,
                ))
            })
            .collect()
    }

    /// The side of `mapping` that the record named by `expr` was read from.
    fn side_of(&self, mapping: MappingId, expr: &str) -> Option<Side> {
        let e = crate::expr::strip_braces(expr).trim();
        let connector = if e == "trigger.record" {
            self.trigger_connector?
        } else {
            *self.step_connector.get(e)?
        };
        self.cx.mapping_specs.get(mapping.0)?.side_of(connector)
    }

    fn projection(
        &self,
        mapping: &str,
        from: &str,
        target: Side,
    ) -> Result<Projection, CompileError> {
        Ok(Projection {
            mapping: self.mapping(mapping)?,
            target,
            from: self.expr(from)?,
        })
    }

    fn steps(&mut self, steps: &[Step]) -> Result<Vec<CompiledStep>, CompileError> {
        steps.iter().map(|s| self.step(s)).collect()
    }

    fn step(&mut self, step: &Step) -> Result<CompiledStep, CompileError> {
        let id = StepId(self.next);
        self.next += 1;
        let kind = self.kind(step)?;
        if let (Some(out), Some(c)) = (step.id(), step_connector(&kind)) {
            self.step_connector.insert(out.to_string(), c);
        }
        let timeout = step_timeout(step);
        Ok(CompiledStep {
            id,
            output: step.id().map(String::from),
            name: step
                .name()
                .map(String::from)
                .unwrap_or_else(|| default_name(step)),
            run_after: if step.run_after().is_empty() {
                vec![StepStatus::Succeeded]
            } else {
                step.run_after().to_vec()
            },
            timeout,
            kind,
        })
    }

    fn kind(&mut self, step: &Step) -> Result<StepKind, CompileError> {
        Ok(match step {
            Step::Get(s) => StepKind::Get {
                connector: self.connector(&s.connector)?,
                entity: s.entity.clone(),
                key: self.tmpl(&s.key)?,
                select: s.select.clone(),
                optional: s.optional,
            },
            Step::Find(s) => StepKind::Find {
                connector: self.connector(&s.connector)?,
                entity: s.entity.clone(),
                where_fields: self.values(&s.where_fields)?,
                select: s.select.clone(),
                all: s.all,
                limit: s.limit,
            },
            Step::Create(s) => {
                let connector = self.connector(&s.connector)?;
                StepKind::Create {
                    connector,
                    entity: s.entity.clone(),
                    projection: self.write_projection(
                        connector,
                        s.mapping.as_deref(),
                        s.from.as_deref(),
                    )?,
                    values: self.values(&s.values)?,
                }
            }
            Step::Update(s) => {
                let connector = self.connector(&s.connector)?;
                StepKind::Update {
                    connector,
                    entity: s.entity.clone(),
                    key: self.tmpl(&s.key)?,
                    changes: s.changes.as_deref().map(|c| self.expr(c)).transpose()?,
                    projection: self.write_projection(
                        connector,
                        s.mapping.as_deref(),
                        s.from.as_deref(),
                    )?,
                    values: self.values(&s.values)?,
                    if_match: s.if_match.as_deref().map(|t| self.tmpl(t)).transpose()?,
                }
            }
            Step::Upsert(s) => {
                let connector = self.connector(&s.connector)?;
                StepKind::Upsert {
                    connector,
                    entity: s.entity.clone(),
                    match_fields: self.values(&s.match_fields)?,
                    projection: self.write_projection(
                        connector,
                        s.mapping.as_deref(),
                        s.from.as_deref(),
                    )?,
                    values: self.values(&s.values)?,
                }
            }
            Step::Call(s) => StepKind::Call {
                connector: self.connector(&s.connector)?,
                operation: s.operation.clone(),
                inputs: self.values(&s.with_inputs)?,
            },
            Step::Map(s) => {
                let mapping = self.mapping(&s.mapping)?;
                let target = s
                    .target
                    .or_else(|| self.side_of(mapping, &s.from).map(Side::other))
                    .ok_or_else(|| {
                        CompileError(format!("map `{}`: cannot infer the target side", s.map))
                    })?;
                StepKind::Map(self.projection(&s.mapping, &s.from, target)?)
            }
            Step::Diff(s) => {
                let mapping = self.mapping(&s.mapping)?;
                let target = s
                    .target
                    .or_else(|| self.side_of(mapping, &s.to))
                    .or_else(|| self.side_of(mapping, &s.from).map(Side::other))
                    .ok_or_else(|| {
                        CompileError(format!("diff `{}`: cannot infer the target side", s.diff))
                    })?;
                StepKind::Diff {
                    projection: self.projection(&s.mapping, &s.from, target)?,
                    to: self.expr(&s.to)?,
                    base: s.base.as_deref().map(|b| self.expr(b)).transpose()?,
                }
            }
            Step::Scope(s) => StepKind::Scope(self.steps(&s.steps)?),
            Step::If(s) => StepKind::If {
                condition: self.expr(&s.condition)?,
                then: self.steps(&s.then)?,
                otherwise: self.steps(&s.otherwise)?,
            },
            Step::Switch(s) => StepKind::Switch {
                value: self.expr(&s.switch)?,
                cases: s
                    .cases
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.steps(v)?)))
                    .collect::<Result<_, CompileError>>()?,
                default: self.steps(&s.default)?,
            },
            Step::Foreach(s) => StepKind::Foreach {
                items: self.expr(&s.foreach)?,
                var: s.item.clone().unwrap_or_else(|| "item".to_string()),
                concurrency: s.concurrency.unwrap_or(1).clamp(1, 50) as usize,
                collect: s.collect.as_deref().map(|c| self.expr(c)).transpose()?,
                steps: self.steps(&s.steps)?,
            },
            Step::Until(s) => StepKind::Until {
                condition: self.expr(&s.until)?,
                limit: s.limit.unwrap_or(UNTIL_LIMIT),
                steps: self.steps(&s.steps)?,
            },
            Step::Set(s) => StepKind::Set(self.values(&s.set)?),
            Step::Terminate(s) => StepKind::Terminate {
                status: s.terminate,
                message: s.message.as_deref().map(|m| self.tmpl(m)).transpose()?,
            },
        })
    }

    fn write_projection(
        &self,
        connector: ConnectorId,
        mapping: Option<&str>,
        from: Option<&str>,
    ) -> Result<Option<Projection>, CompileError> {
        let (Some(mapping), Some(from)) = (mapping, from) else {
            return Ok(None);
        };
        let id = self.mapping(mapping)?;
        let target = self
            .cx
            .mapping_specs
            .get(id.0)
            .and_then(|m| m.side_of(connector))
            .ok_or_else(|| {
                CompileError(format!("mapping `{mapping}` does not map this connector"))
            })?;
        self.projection(mapping, from, target).map(Some)
    }
}

fn step_connector(kind: &StepKind) -> Option<ConnectorId> {
    match kind {
        StepKind::Get { connector, .. }
        | StepKind::Find { connector, .. }
        | StepKind::Create { connector, .. }
        | StepKind::Update { connector, .. }
        | StepKind::Upsert { connector, .. } => Some(*connector),
        _ => None,
    }
}

fn step_timeout(step: &Step) -> Option<std::time::Duration> {
    let t = match step {
        Step::Get(s) => &s.timeout,
        Step::Find(s) => &s.timeout,
        Step::Create(s) => &s.timeout,
        Step::Update(s) => &s.timeout,
        Step::Upsert(s) => &s.timeout,
        Step::Call(s) => &s.timeout,
        Step::Map(s) => &s.timeout,
        Step::Diff(s) => &s.timeout,
        Step::Scope(s) => &s.timeout,
        Step::If(s) => &s.timeout,
        Step::Switch(s) => &s.timeout,
        Step::Foreach(s) => &s.timeout,
        Step::Until(s) => &s.timeout,
        Step::Set(s) => &s.timeout,
        Step::Terminate(s) => &s.timeout,
    };
    t.as_ref().and_then(|d| d.to_std())
}

/// A readable name for a step that has none: `get referral`, `if opportunity is none`.
fn default_name(step: &Step) -> String {
    let short = |s: &str| {
        let s = crate::expr::strip_braces(s).trim();
        if s.chars().count() > 60 {
            format!("{}…", s.chars().take(59).collect::<String>())
        } else {
            s.to_string()
        }
    };
    match step {
        Step::If(s) => format!("if {}", short(&s.condition)),
        Step::Switch(s) => format!("switch {}", short(&s.switch)),
        Step::Foreach(s) => format!("foreach {}", short(&s.foreach)),
        Step::Until(s) => format!("until {}", short(&s.until)),
        Step::Set(s) => format!(
            "set {}",
            s.set.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        Step::Terminate(s) => format!(
            "terminate {}",
            match s.terminate {
                RunStatus::Succeeded => "succeeded",
                RunStatus::Failed => "failed",
                RunStatus::Cancelled => "cancelled",
            }
        ),
        other => match other.id() {
            Some(id) => format!("{} {id}", other.kind()),
            None => other.kind().to_string(),
        },
    }
}
