//! Reference checks shared by the rule families: connector, entity, field,
//! operation, mapping and value-map names must resolve.

use crate::connector::registry::builtin_operations;
use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::spec::connector::{ConnectorSpec, EntitySpec};
use crate::spec::mapping::MappingSpec;

use super::Cx;

fn suggest(d: Diagnostic, name: &str, candidates: Vec<&str>, what: &str) -> Diagnostic {
    match did_you_mean(name, candidates.iter().copied()) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None if candidates.is_empty() => {
            d.with_help(format!("no {what} is defined in this project"))
        }
        None => d.with_help(format!("defined {what}s: {}", candidates.join(", "))),
    }
}

impl<'p> Cx<'p> {
    /// Resolves a connector name, reporting `unknown-connector` at `pointer`.
    pub(crate) fn connector(
        &mut self,
        file: usize,
        pointer: &str,
        name: &str,
    ) -> Option<&'p ConnectorSpec> {
        let project = self.project;
        if let Some(c) = project.connectors.get(name) {
            return Some(&c.spec);
        }
        let d = Diagnostic::error(
            Code::UnknownConnector,
            format!("unknown connector `{name}`"),
        );
        let d = suggest(
            d,
            name,
            project.connectors.keys().map(String::as_str).collect(),
            "connector",
        );
        self.report(file, pointer, d);
        None
    }

    /// Resolves an entity of a connector, reporting `unknown-entity`. Connectors
    /// that declare no entities accept any name.
    pub(crate) fn entity(
        &mut self,
        file: usize,
        pointer: &str,
        connector: &'p ConnectorSpec,
        name: &str,
    ) -> Option<&'p EntitySpec> {
        if let Some(e) = connector.entities.get(name) {
            return Some(e);
        }
        if connector.entities.is_empty() {
            return None;
        }
        let d = Diagnostic::error(
            Code::UnknownEntity,
            format!("connector `{}` has no entity `{name}`", connector.connector),
        );
        let d = suggest(
            d,
            name,
            connector.entities.keys().map(String::as_str).collect(),
            "entity",
        );
        self.report(file, pointer, d);
        None
    }

    /// Resolves connector + entity at once (`None` when either is unknown).
    pub(crate) fn connector_entity(
        &mut self,
        file: usize,
        base: &str,
        connector: &str,
        entity: &str,
    ) -> Option<(&'p ConnectorSpec, Option<&'p EntitySpec>)> {
        let c = self.connector(file, &format!("{base}/connector"), connector)?;
        let e = self.entity(file, &format!("{base}/entity"), c, entity);
        Some((c, e))
    }

    /// Checks that a field exists on an entity that lists its fields, reporting
    /// `unknown-field` at the key `pointer` (or the value, with `at_value`).
    pub(crate) fn field(
        &mut self,
        file: usize,
        pointer: &str,
        entity: Option<&EntitySpec>,
        entity_name: &str,
        field: &str,
        at_value: bool,
    ) -> bool {
        let Some(entity) = entity else { return true };
        if entity.fields.is_empty() || entity.fields.contains_key(field) || field.contains('@') {
            return true;
        }
        let d = Diagnostic::error(
            Code::UnknownField,
            format!("entity `{entity_name}` has no field `{field}`"),
        );
        let d = suggest(
            d,
            field,
            entity.fields.keys().map(String::as_str).collect(),
            "field",
        );
        if at_value {
            self.report(file, pointer, d);
        } else {
            self.report_key(file, pointer, d);
        }
        false
    }

    /// Checks that a connector offers an operation, reporting `unknown-operation`.
    pub(crate) fn operation(
        &mut self,
        file: usize,
        pointer: &str,
        connector: &ConnectorSpec,
        name: &str,
    ) -> bool {
        let builtin = builtin_operations(connector.kind);
        if connector.operations.contains_key(name) || builtin.iter().any(|o| o.name == name) {
            return true;
        }
        let mut names: Vec<&str> = builtin.iter().map(|o| o.name).collect();
        names.extend(connector.operations.keys().map(String::as_str));
        let d = Diagnostic::error(
            Code::UnknownOperation,
            format!(
                "connector `{}` ({}) has no operation `{name}`",
                connector.connector,
                connector.kind.as_str()
            ),
        );
        self.report(file, pointer, suggest(d, name, names, "operation"));
        false
    }

    /// Resolves a mapping table, reporting `unknown-mapping`.
    pub(crate) fn mapping(
        &mut self,
        file: usize,
        pointer: &str,
        name: &str,
    ) -> Option<&'p MappingSpec> {
        let project = self.project;
        if let Some(m) = project.mappings.get(name) {
            return Some(&m.spec);
        }
        let d = Diagnostic::error(
            Code::UnknownMapping,
            format!("unknown mapping table `{name}`"),
        );
        let d = suggest(
            d,
            name,
            project.mappings.keys().map(String::as_str).collect(),
            "mapping table",
        );
        self.report(file, pointer, d);
        None
    }

    /// Checks that a value map exists, reporting `unknown-value-map`.
    pub(crate) fn value_map(&mut self, file: usize, pointer: &str, name: &str) -> bool {
        let project = self.project;
        if project.value_maps.contains_key(name) {
            return true;
        }
        let d = Diagnostic::error(Code::UnknownValueMap, format!("unknown value map `{name}`"));
        let d = suggest(
            d,
            name,
            project.value_maps.keys().map(String::as_str).collect(),
            "value map",
        );
        self.report(file, pointer, d);
        false
    }
}
