//! Stage 3: `ValidProject → CompiledProject`. Every name is resolved to an id,
//! every JSONPath parsed and every template compiled once; the interpreter accepts
//! only compiled flows and never parses text.

pub mod flow;
pub mod mapping;

use std::collections::HashMap;

use crate::expr::value::{Env, leak_env};
use crate::spec::common::ConflictPolicy;
use crate::spec::connector::ConnectorSpec;
use crate::spec::flowtest::FlowTestSpec;
use crate::spec::mapping::FieldType;
use crate::spec::project::ProjectSpec;
use crate::validate::ValidProject;

pub use flow::{CompiledFlow, CompiledStep, StepKind};
pub use mapping::{CompiledMapping, CompiledRow, CompiledValueMap};

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub usize);
    )*};
}

id_type! {
    /// Index of a connector in [`CompiledProject::connectors`].
    ConnectorId;
    /// Index of a mapping table in [`CompiledProject::mappings`].
    MappingId;
    /// Index of a value map in [`CompiledProject::value_maps`].
    ValueMapId;
    /// Index of a flow in [`CompiledProject::flows`].
    FlowId;
    /// Pre-order index of a step within its flow.
    StepId;
}

/// A failure to compile something validation accepted (an internal error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompileError(pub String);

/// A connector, resolved.
#[derive(Debug, Clone)]
pub struct CompiledConnector {
    /// Its id.
    pub id: ConnectorId,
    /// Its name.
    pub name: String,
    /// Its definition.
    pub spec: ConnectorSpec,
}

impl CompiledConnector {
    /// The key field of an entity (`id` when not declared).
    pub fn key_field(&self, entity: &str) -> String {
        self.spec
            .entities
            .get(entity)
            .and_then(|e| e.key.clone())
            .unwrap_or_else(|| "id".to_string())
    }
}

/// A compiled project: what the interpreter runs.
#[derive(Debug)]
pub struct CompiledProject {
    /// The environment every template of this project was compiled into.
    pub env: Env,
    /// `cosync.yaml`, if any.
    pub project: Option<ProjectSpec>,
    /// Connectors by id.
    pub connectors: Vec<CompiledConnector>,
    /// Mapping tables by id.
    pub mappings: Vec<CompiledMapping>,
    /// Value maps by id.
    pub value_maps: Vec<CompiledValueMap>,
    /// Flows by id.
    pub flows: Vec<CompiledFlow>,
    /// Flow test suites with the file they came from.
    pub tests: Vec<(FlowTestSpec, std::path::PathBuf)>,
    names: Names,
}

#[derive(Debug, Default)]
struct Names {
    connectors: HashMap<String, ConnectorId>,
    mappings: HashMap<String, MappingId>,
    flows: HashMap<String, FlowId>,
}

impl CompiledProject {
    /// A connector by name.
    pub fn connector_id(&self, name: &str) -> Option<ConnectorId> {
        self.names.connectors.get(name).copied()
    }

    /// A mapping by name.
    pub fn mapping_id(&self, name: &str) -> Option<MappingId> {
        self.names.mappings.get(name).copied()
    }

    /// A flow by name.
    pub fn flow(&self, name: &str) -> Option<&CompiledFlow> {
        self.names
            .flows
            .get(name)
            .and_then(|id| self.flows.get(id.0))
    }

    /// A connector by id.
    pub fn connector(&self, id: ConnectorId) -> &CompiledConnector {
        &self.connectors[id.0]
    }

    /// A projector for a mapping.
    pub fn projector(&self, id: MappingId) -> crate::mapping::Projector<'_> {
        crate::mapping::Projector {
            mapping: &self.mappings[id.0],
            value_maps: &self.value_maps,
        }
    }
}

/// Loads, validates and compiles the project in `dir` (unit tests); panics on
/// any error, showing the diagnostics.
#[cfg(test)]
pub(crate) fn compile_folder(dir: &std::path::Path) -> CompiledProject {
    let outcome = crate::source::Loader::new()
        .load(&[dir.to_path_buf()])
        .unwrap_or_default();
    let (valid, diags) = crate::validate::validate(outcome);
    assert!(!diags.has_errors(), "{diags:?}");
    match compile(&valid) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Compiles a validated project.
pub fn compile(valid: &ValidProject) -> Result<CompiledProject, CompileError> {
    let env = leak_env();
    let mut names = Names::default();
    let connectors: Vec<CompiledConnector> = valid
        .connectors
        .iter()
        .enumerate()
        .map(|(i, (name, d))| {
            names.connectors.insert(name.clone(), ConnectorId(i));
            CompiledConnector {
                id: ConnectorId(i),
                name: name.clone(),
                spec: d.spec.clone(),
            }
        })
        .collect();
    let mut vm_names = HashMap::new();
    let value_maps: Vec<CompiledValueMap> = valid
        .value_maps
        .iter()
        .enumerate()
        .map(|(i, (name, d))| {
            vm_names.insert(name.clone(), ValueMapId(i));
            CompiledValueMap::compile(&d.spec)
        })
        .collect();
    let project = valid.project.as_ref().map(|p| p.spec.clone());
    let default_conflict = project
        .as_ref()
        .and_then(|p| p.sync.as_ref())
        .and_then(|s| s.conflict)
        .unwrap_or(ConflictPolicy::Newest);
    let field_type = |c: ConnectorId, entity: &str, field: &str| -> Option<FieldType> {
        connectors
            .get(c.0)?
            .spec
            .entities
            .get(entity)?
            .fields
            .get(field)
            .map(|f| f.field_type)
    };
    let mcx = mapping::MappingCx {
        env,
        connectors: &names.connectors,
        value_maps: &vm_names,
        crm_fields: &field_type,
        default_conflict,
    };
    let mut mappings = Vec::new();
    for (i, (name, d)) in valid.mappings.iter().enumerate() {
        names.mappings.insert(name.clone(), MappingId(i));
        mappings.push(
            mapping::compile_mapping(&mcx, &d.spec)
                .map_err(|e| CompileError(format!("mapping `{name}`: {e}")))?,
        );
    }
    let mut flows = Vec::new();
    for (i, (name, d)) in valid.flows.iter().enumerate() {
        names.flows.insert(name.clone(), FlowId(i));
        let fcx = flow::FlowCx {
            env,
            connectors: &names.connectors,
            mappings: &names.mappings,
            mapping_specs: &mappings,
        };
        flows.push(
            flow::compile_flow(&fcx, FlowId(i), &d.spec)
                .map_err(|e| CompileError(format!("flow `{name}`: {e}")))?,
        );
    }
    let tests = valid
        .tests
        .values()
        .map(|t| {
            (
                t.spec.clone(),
                valid
                    .files
                    .get(t.file)
                    .map(|f| f.path.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    Ok(CompiledProject {
        env,
        project,
        connectors,
        mappings,
        value_maps,
        flows,
        tests,
        names,
    })
}
