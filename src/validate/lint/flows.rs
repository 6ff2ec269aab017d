//! Flow rules: trigger present and resolvable, step references (connectors,
//! entities, fields, operations, mappings), step ids unique, step outputs used only
//! after and within the block that defines them, template/expression syntax and
//! declared variables, unreachable steps, and inferable map/diff targets.

use std::collections::HashMap;

use crate::diag::{Code, Diagnostic};
use crate::spec::common::Side;
use crate::spec::flow::{FlowSpec, Step, StepStatus, TriggerSpec};
use crate::spec::mapping::MappingSpec;

use super::{Cx, TextMode, undeclared};

/// Names every flow may read besides its step ids.
const FLOW_GLOBALS: &[&str] = &["trigger", "run"];

pub(super) fn check(cx: &mut Cx<'_>) {
    let project = cx.project;
    for flow in project.flows.values() {
        FlowCheck::new(cx, flow.file, &flow.spec).run();
    }
}

/// Where a step id or variable is defined.
#[derive(Debug, Clone)]
struct Definition {
    pointer: String,
    order: usize,
    line: u32,
}

struct FlowCheck<'c, 'p> {
    cx: &'c mut Cx<'p>,
    file: usize,
    flow: &'p FlowSpec,
    /// Every id defined anywhere in the flow (first definition).
    defined: HashMap<String, Definition>,
    /// Step id → connector name, for target inference.
    step_connector: HashMap<String, String>,
    /// Visible names, innermost block last.
    scopes: Vec<Vec<String>>,
    /// Pre-order index of the step being checked.
    order: usize,
}

impl<'c, 'p> FlowCheck<'c, 'p> {
    fn new(cx: &'c mut Cx<'p>, file: usize, flow: &'p FlowSpec) -> Self {
        FlowCheck {
            cx,
            file,
            flow,
            defined: HashMap::new(),
            step_connector: HashMap::new(),
            scopes: vec![Vec::new()],
            order: 0,
        }
    }

    fn run(mut self) {
        self.check_trigger();
        let mut order = 0;
        self.collect(&self.flow.steps, "/steps", &mut order);
        self.order = 0;
        self.walk(&self.flow.steps, "/steps");
    }

    fn check_trigger(&mut self) {
        let file = self.file;
        match &self.flow.trigger {
            None => self.cx.report_key(
                file,
                "/flow",
                Diagnostic::error(Code::MissingTrigger, format!("flow `{}` has no trigger, so it never runs", self.flow.flow))
                    .with_help("add `trigger:` — `partner_center: { events: [...] }`, `crm_change: {...}`, `schedule: {...}` or `manual: {}`"),
            ),
            Some(TriggerSpec::PartnerCenter(t)) => {
                let name = t.connector.as_deref().unwrap_or("partner_center");
                let pointer = if t.connector.is_some() { "/trigger/partner_center/connector" } else { "/trigger/partner_center" };
                self.cx.connector(file, pointer, name);
            }
            Some(TriggerSpec::CrmChange(t)) => {
                if let Some((_, entity)) = self.cx.connector_entity(file, "/trigger/crm_change", &t.connector, &t.entity) {
                    for field in t.where_fields.keys() {
                        let p = format!("/trigger/crm_change/where/{}", crate::source::escape_pointer(field));
                        self.cx.field(file, &p, entity, &t.entity, field, false);
                    }
                }
            }
            Some(TriggerSpec::Schedule(_) | TriggerSpec::Manual(_)) => {}
        }
    }

    /// Pass 1: every definition, in document order; duplicate ids.
    fn collect(&mut self, steps: &'p [Step], base: &str, order: &mut usize) {
        for (i, step) in steps.iter().enumerate() {
            let pointer = format!("{base}/{i}");
            *order += 1;
            let mut names: Vec<(String, String)> = Vec::new();
            if let Some(id) = step.id() {
                let key = if matches!(
                    step,
                    Step::Scope(_)
                        | Step::If(_)
                        | Step::Switch(_)
                        | Step::Foreach(_)
                        | Step::Until(_)
                        | Step::Set(_)
                        | Step::Terminate(_)
                ) {
                    "id"
                } else {
                    step.kind()
                };
                names.push((id.to_string(), format!("{pointer}/{key}")));
            }
            if let Step::Set(s) = step {
                for name in s.set.keys() {
                    names.push((
                        name.clone(),
                        format!("{pointer}/set/{}", crate::source::escape_pointer(name)),
                    ));
                }
            }
            for (name, at) in names {
                let is_set_var = matches!(step, Step::Set(s) if s.set.contains_key(&name));
                if FLOW_GLOBALS.contains(&name.as_str())
                    || crate::expr::template::GLOBALS.contains(&name.as_str())
                {
                    self.cx.report(
                        self.file,
                        &at,
                        Diagnostic::error(
                            Code::ReservedName,
                            format!("`{name}` is a reserved name"),
                        )
                        .with_help("choose another id; `trigger`, `run` and the template functions are predefined"),

                    );
                    continue;
                }
                match self.defined.get(&name) {
                    Some(first) => {
                        let first_is_set = self.flow_value_is_set_var(&first.pointer);
                        if !(is_set_var && first_is_set) {
                            let msg = format!(
                                "id `{name}` is already used by the step at line {}",
                                first.line
                            );
                            self.cx.report(
                                self.file,
                                &at,
                                Diagnostic::error(Code::DuplicateStepId, msg)
                                    .with_help("step ids must be unique within a flow"),
                            );
                        }
                    }
                    None => {
                        let line = self.line_of(&at);
                        self.defined.insert(
                            name.clone(),
                            Definition {
                                pointer: at,
                                order: *order,
                                line,
                            },
                        );
                    }
                }
            }
            if let Some(conn) = step_connector(step)
                && let Some(id) = step.id()
            {
                self.step_connector
                    .entry(id.to_string())
                    .or_insert_with(|| conn.to_string());
            }
            for (key, children) in step.children() {
                self.collect(children, &format!("{pointer}/{key}"), order);
            }
        }
    }

    fn flow_value_is_set_var(&self, pointer: &str) -> bool {
        pointer.contains("/set/")
    }

    fn line_of(&self, pointer: &str) -> u32 {
        self.cx
            .project
            .files
            .get(self.file)
            .and_then(|f| f.located.as_ref())
            .and_then(|l| l.locate(pointer))
            .map_or(0, |s| s.start.line)
    }

    /// Pass 2: scopes, expressions, references, reachability.
    fn walk(&mut self, steps: &'p [Step], base: &str) {
        let mut terminated_at: Option<usize> = None;
        for (i, step) in steps.iter().enumerate() {
            self.order += 1;
            let pointer = format!("{base}/{i}");
            if let Some(t) = terminated_at
                && runs_after_success(step)
            {
                let d = Diagnostic::error(
                    Code::UnreachableStep,
                    "this step can never run: the steps before it always end the run",
                )
                .with_help(format!(
                    "the run ends at step {} of this list; remove this step or move it before",
                    t + 1
                ));
                self.cx
                    .report_key(self.file, &format!("{pointer}/{}", kind_key(step)), d);
                terminated_at = None; // report once per list
            }
            self.check_step(step, &pointer);
            if always_terminates(std::slice::from_ref(step)) && terminated_at.is_none() {
                terminated_at = Some(i);
            }
            if let Some(id) = step.id() {
                self.declare(id);
            }
            if let Step::Set(s) = step {
                for name in s.set.keys() {
                    self.declare(name);
                }
            }
        }
    }

    fn declare(&mut self, name: &str) {
        if let Some(level) = self.scopes.last_mut() {
            level.push(name.to_string());
        }
    }

    fn visible(&self) -> Vec<String> {
        let mut v: Vec<String> = FLOW_GLOBALS.iter().map(|s| (*s).to_string()).collect();
        v.extend(self.scopes.iter().flatten().cloned());
        v
    }

    /// The diagnostic for reading `var` here, if it is not in scope.
    fn resolve(&self, var: &str) -> Option<Diagnostic> {
        let visible = self.visible();
        if visible.iter().any(|v| v == var) {
            return None;
        }
        match self.defined.get(var) {
            Some(def) if def.order > self.order => Some(
                Diagnostic::error(Code::StepUsedBeforeDefined, format!("`{var}` is read here but its step runs later (line {})", def.line))
                    .with_help("move the step that defines it before this one"),
            ),
            Some(def) => Some(
                Diagnostic::error(Code::StepOutOfScope, format!("`{var}` is defined inside another block (line {}) and is not visible here", def.line))
                    .with_help("steps inside `if`, `switch`, `foreach` and `until` are visible only within them; set a variable before the block and assign it inside"),
            ),
            None => Some(undeclared(var, &visible, "in this flow")),
        }
    }

    fn text(&mut self, pointer: &str, text: &str, mode: TextMode) {
        // Resolve first (needs &self), then let the shared checker report (needs &mut cx).
        let vars = match mode {
            TextMode::Expression => {
                crate::expr::template::expression_variables(crate::expr::strip_braces(text))
            }
            TextMode::Template => crate::expr::template::template_variables(text),
        };
        let mut pending: HashMap<String, Diagnostic> = vars
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|v| self.resolve(&v).map(|d| (v, d)))
            .collect();
        self.cx
            .check_text(self.file, pointer, text, mode, &mut |v| pending.remove(v));
    }

    fn values(
        &mut self,
        pointer: &str,
        values: &'p std::collections::BTreeMap<String, serde_json::Value>,
    ) {
        for (k, v) in values {
            self.value(
                &format!("{pointer}/{}", crate::source::escape_pointer(k)),
                v,
            );
        }
    }

    fn value(&mut self, pointer: &str, value: &serde_json::Value) {
        match value {
            serde_json::Value::String(s) => self.text(pointer, s, TextMode::Template),
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.value(&format!("{pointer}/{i}"), v);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    self.value(
                        &format!("{pointer}/{}", crate::source::escape_pointer(k)),
                        v,
                    );
                }
            }
            _ => {}
        }
    }

    fn fields_exist(
        &mut self,
        pointer: &str,
        keys: impl IntoIterator<Item = &'p String>,
        entity: Option<&crate::spec::connector::EntitySpec>,
        entity_name: &str,
    ) {
        for k in keys {
            let p = format!("{pointer}/{}", crate::source::escape_pointer(k));
            self.cx.field(self.file, &p, entity, entity_name, k, false);
        }
    }

    fn check_step(&mut self, step: &'p Step, p: &str) {
        let file = self.file;
        match step {
            Step::Get(s) => {
                let entity = self
                    .cx
                    .connector_entity(file, p, &s.connector, &s.entity)
                    .and_then(|(_, e)| e);
                self.text(&format!("{p}/key"), &s.key, TextMode::Template);
                for (i, f) in s.select.iter().enumerate() {
                    self.cx
                        .field(file, &format!("{p}/select/{i}"), entity, &s.entity, f, true);
                }
            }
            Step::Find(s) => {
                let entity = self
                    .cx
                    .connector_entity(file, p, &s.connector, &s.entity)
                    .and_then(|(_, e)| e);
                self.fields_exist(
                    &format!("{p}/where"),
                    s.where_fields.keys(),
                    entity,
                    &s.entity,
                );
                self.values(&format!("{p}/where"), &s.where_fields);
                for (i, f) in s.select.iter().enumerate() {
                    self.cx
                        .field(file, &format!("{p}/select/{i}"), entity, &s.entity, f, true);
                }
            }
            Step::Create(s) => {
                let entity = self
                    .cx
                    .connector_entity(file, p, &s.connector, &s.entity)
                    .and_then(|(_, e)| e);
                self.fields_exist(&format!("{p}/values"), s.values.keys(), entity, &s.entity);
                self.values(&format!("{p}/values"), &s.values);
                self.projection(
                    p,
                    "create",
                    &s.connector,
                    &s.entity,
                    s.mapping.as_deref(),
                    s.from.as_deref(),
                    !s.values.is_empty(),
                );
            }
            Step::Update(s) => {
                let entity = self
                    .cx
                    .connector_entity(file, p, &s.connector, &s.entity)
                    .and_then(|(_, e)| e);
                self.text(&format!("{p}/key"), &s.key, TextMode::Template);
                self.fields_exist(&format!("{p}/values"), s.values.keys(), entity, &s.entity);
                self.values(&format!("{p}/values"), &s.values);
                if let Some(c) = &s.changes {
                    self.text(&format!("{p}/changes"), c, TextMode::Expression);
                }
                if let Some(m) = &s.if_match {
                    self.text(&format!("{p}/if_match"), m, TextMode::Template);
                }
                let has_values = !s.values.is_empty() || s.changes.is_some();
                self.projection(
                    p,
                    "update",
                    &s.connector,
                    &s.entity,
                    s.mapping.as_deref(),
                    s.from.as_deref(),
                    has_values,
                );
            }
            Step::Upsert(s) => {
                let entity = self
                    .cx
                    .connector_entity(file, p, &s.connector, &s.entity)
                    .and_then(|(_, e)| e);
                self.fields_exist(
                    &format!("{p}/match"),
                    s.match_fields.keys(),
                    entity,
                    &s.entity,
                );
                self.values(&format!("{p}/match"), &s.match_fields);
                self.fields_exist(&format!("{p}/values"), s.values.keys(), entity, &s.entity);
                self.values(&format!("{p}/values"), &s.values);
                self.projection(
                    p,
                    "upsert",
                    &s.connector,
                    &s.entity,
                    s.mapping.as_deref(),
                    s.from.as_deref(),
                    !s.values.is_empty(),
                );
            }
            Step::Call(s) => {
                if let Some(c) = self
                    .cx
                    .connector(file, &format!("{p}/connector"), &s.connector)
                    && self
                        .cx
                        .operation(file, &format!("{p}/operation"), c, &s.operation)
                    && let Some(op) = c.operations.get(&s.operation)
                {
                    let missing: Vec<&String> = op
                        .inputs
                        .iter()
                        .filter(|i| !s.with_inputs.contains_key(*i))
                        .collect();
                    if !missing.is_empty() {
                        let names: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
                        let d = Diagnostic::error(
                            Code::InvalidStep,
                            format!(
                                "operation `{}` needs the input(s) {}",
                                s.operation,
                                names.join(", ")
                            ),
                        )
                        .with_help("pass them under `with:`");
                        self.cx.report_key(file, &format!("{p}/call"), d);
                    }
                }
                self.values(&format!("{p}/with"), &s.with_inputs);
            }
            Step::Map(s) => {
                self.text(&format!("{p}/from"), &s.from, TextMode::Expression);
                if let Some(m) = self.cx.mapping(file, &format!("{p}/mapping"), &s.mapping)
                    && s.target.is_none()
                    && self.infer(m, &[&s.from]).is_none()
                {
                    self.ambiguous(p, "map");
                }
            }
            Step::Diff(s) => {
                self.text(&format!("{p}/from"), &s.from, TextMode::Expression);
                self.text(&format!("{p}/to"), &s.to, TextMode::Expression);
                if let Some(b) = &s.base {
                    self.text(&format!("{p}/base"), b, TextMode::Expression);
                }
                if let Some(m) = self.cx.mapping(file, &format!("{p}/mapping"), &s.mapping) {
                    let from_side = self.side_of(m, &s.from);
                    let to_side = self.side_of(m, &s.to);
                    let consistent = match (from_side, to_side, s.target) {
                        (Some(f), Some(t), _) if f == t => false,
                        (_, _, Some(_)) => true,
                        (None, None, None) => false,
                        _ => true,
                    };
                    if !consistent {
                        self.ambiguous(p, "diff");
                    }
                }
            }
            Step::Scope(s) => {
                // A scope groups steps; what it defines stays visible after it.
                self.walk(&s.steps, &format!("{p}/steps"));
            }
            Step::If(s) => {
                self.text(&format!("{p}/if"), &s.condition, TextMode::Expression);
                self.block(&s.then, &format!("{p}/then"), None);
                self.block(&s.otherwise, &format!("{p}/else"), None);
            }
            Step::Switch(s) => {
                self.text(&format!("{p}/switch"), &s.switch, TextMode::Expression);
                for (value, steps) in &s.cases {
                    self.block(
                        steps,
                        &format!("{p}/cases/{}", crate::source::escape_pointer(value)),
                        None,
                    );
                }
                self.block(&s.default, &format!("{p}/default"), None);
            }
            Step::Foreach(s) => {
                self.text(&format!("{p}/foreach"), &s.foreach, TextMode::Expression);
                let item = s.item.clone().unwrap_or_else(|| "item".to_string());
                self.scopes.push(vec![item]);
                self.walk(&s.steps, &format!("{p}/steps"));
                if let Some(c) = &s.collect {
                    self.text(&format!("{p}/collect"), c, TextMode::Expression);
                }
                self.scopes.pop();
            }
            Step::Until(s) => {
                self.scopes.push(Vec::new());
                self.walk(&s.steps, &format!("{p}/steps"));
                self.text(&format!("{p}/until"), &s.until, TextMode::Expression);
                self.scopes.pop();
            }
            Step::Set(s) => self.values(&format!("{p}/set"), &s.set),
            Step::Terminate(s) => {
                if let Some(m) = &s.message {
                    self.text(&format!("{p}/message"), m, TextMode::Template);
                }
            }
        }
    }

    fn block(&mut self, steps: &'p [Step], pointer: &str, var: Option<String>) {
        self.scopes.push(var.into_iter().collect());
        self.walk(steps, pointer);
        self.scopes.pop();
    }

    /// `create`/`update`/`upsert`: a mapping needs `from` and must map this entity;
    /// without a mapping, values are needed.
    #[allow(clippy::too_many_arguments)]
    fn projection(
        &mut self,
        p: &str,
        kind: &str,
        connector: &str,
        entity: &str,
        mapping: Option<&str>,
        from: Option<&str>,
        has_values: bool,
    ) {
        let file = self.file;
        if let Some(f) = from {
            self.text(&format!("{p}/from"), f, TextMode::Expression);
        }
        match (mapping, from) {
            (Some(name), from) => {
                if from.is_none() {
                    let d = Diagnostic::error(
                        Code::InvalidStep,
                        format!("`mapping` needs `from`: the record to project through `{name}`"),
                    )
                    .with_help("add `from: <step id>`");
                    self.cx.report_key(file, &format!("{p}/mapping"), d);
                }
                if let Some(m) = self.cx.mapping(file, &format!("{p}/mapping"), name) {
                    let sides = [
                        (&m.partner_center.connector, &m.partner_center.entity),
                        (&m.crm.connector, &m.crm.entity),
                    ];
                    if !sides
                        .iter()
                        .any(|(c, e)| c.as_str() == connector && e.as_str() == entity)
                    {
                        let d = Diagnostic::error(
                            Code::InvalidStep,
                            format!(
                                "mapping `{name}` maps {}/{} and {}/{}, not {connector}/{entity}",
                                m.partner_center.connector,
                                m.partner_center.entity,
                                m.crm.connector,
                                m.crm.entity
                            ),
                        );
                        self.cx.report(file, &format!("{p}/mapping"), d);
                    }
                }
            }
            (None, Some(_)) => {
                let d = Diagnostic::error(
                    Code::InvalidStep,
                    "`from` needs `mapping`: the table to project it through",
                )
                .with_help("add `mapping: <table>`, or use `values:`");
                self.cx.report_key(file, &format!("{p}/from"), d);
            }
            (None, None) if !has_values => {
                let what = if kind == "update" {
                    "`changes`, `values` or `mapping` + `from`"
                } else {
                    "`values` or `mapping` + `from`"
                };
                let d = Diagnostic::error(
                    Code::InvalidStep,
                    format!("this {kind} step writes nothing: give it {what}"),
                );
                self.cx.report_key(file, &format!("{p}/{kind}"), d);
            }
            (None, None) => {}
        }
    }

    fn ambiguous(&mut self, p: &str, kind: &str) {
        let d = Diagnostic::error(Code::AmbiguousTarget, format!("cannot tell which side this {kind} step projects onto"))
            .with_help("add `target: crm` or `target: partner_center` (it is inferred only when `from` or `to` names a step that read one side)");
        self.cx.report_key(self.file, &format!("{p}/{kind}"), d);
    }

    /// The side of `mapping` that the record named by `expr` comes from.
    fn side_of(&self, mapping: &MappingSpec, expr: &str) -> Option<Side> {
        let e = crate::expr::strip_braces(expr).trim();
        let connector = if e == "trigger.record" {
            match &self.flow.trigger {
                Some(TriggerSpec::CrmChange(t)) => Some(t.connector.as_str()),
                _ => None,
            }
        } else {
            self.step_connector.get(e).map(String::as_str)
        }?;
        if connector == mapping.partner_center.connector {
            Some(Side::PartnerCenter)
        } else if connector == mapping.crm.connector {
            Some(Side::Crm)
        } else {
            None
        }
    }

    fn infer(&self, mapping: &MappingSpec, from: &[&str]) -> Option<Side> {
        from.iter()
            .find_map(|f| self.side_of(mapping, f))
            .map(Side::other)
    }
}

fn step_connector(step: &Step) -> Option<&str> {
    match step {
        Step::Get(s) => Some(&s.connector),
        Step::Find(s) => Some(&s.connector),
        Step::Create(s) => Some(&s.connector),
        Step::Update(s) => Some(&s.connector),
        Step::Upsert(s) => Some(&s.connector),
        _ => None,
    }
}

fn kind_key(step: &Step) -> &'static str {
    match step {
        Step::If(_) => "if",
        other => other.kind(),
    }
}

fn runs_after_success(step: &Step) -> bool {
    let r = step.run_after();
    r.is_empty() || r.contains(&StepStatus::Succeeded)
}

/// True when running `steps` (normally) always ends the run.
pub(crate) fn always_terminates(steps: &[Step]) -> bool {
    steps.iter().any(|s| match s {
        Step::Terminate(t) => {
            runs_after_success(s) && t.run_after.iter().all(|r| *r == StepStatus::Succeeded)
        }
        Step::Scope(sc) => always_terminates(&sc.steps),
        Step::If(i) => {
            !i.then.is_empty()
                && !i.otherwise.is_empty()
                && always_terminates(&i.then)
                && always_terminates(&i.otherwise)
        }
        Step::Switch(sw) => {
            !sw.default.is_empty()
                && always_terminates(&sw.default)
                && sw
                    .cases
                    .values()
                    .all(|c| !c.is_empty() && always_terminates(c))
        }
        _ => false,
    })
}
