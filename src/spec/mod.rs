//! Stage 1½: the typed model of every file kind, unresolved (names are strings).
//! serde + schemars types with `deny_unknown_fields`; their doc comments become the
//! JSON Schema descriptions editors show.

pub mod common;
pub mod connector;
pub mod flow;
pub mod flowtest;
pub mod mapping;
pub mod project;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use common::{ConflictPolicy, Direction, Duration, Side};
pub use connector::ConnectorSpec;
pub use flow::{FlowSpec, Step};
pub use flowtest::FlowTestSpec;
pub use mapping::{MappingSpec, ValueMapSpec};
pub use project::ProjectSpec;

/// The kinds of cosync files. A file's kind is told by its top-level key.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// `cosync.yaml` (top-level key `project`).
    Project,
    /// A flow (`flow`).
    Flow,
    /// A field-mapping table (`mapping`).
    Mapping,
    /// A value map (`value_map`).
    ValueMap,
    /// A connector definition (`connector`).
    Connector,
    /// A flow test file (`test`).
    Test,
}

impl FileKind {
    /// Every kind, in schema order.
    pub const ALL: [FileKind; 6] = [
        FileKind::Project,
        FileKind::Flow,
        FileKind::Mapping,
        FileKind::ValueMap,
        FileKind::Connector,
        FileKind::Test,
    ];

    /// The top-level key that marks this kind.
    pub fn key(self) -> &'static str {
        match self {
            FileKind::Project => "project",
            FileKind::Flow => "flow",
            FileKind::Mapping => "mapping",
            FileKind::ValueMap => "value_map",
            FileKind::Connector => "connector",
            FileKind::Test => "test",
        }
    }

    /// The file name of this kind's JSON Schema in `schemas/`.
    pub fn schema_file(self) -> String {
        format!("{}.schema.json", self.key().replace('_', "-"))
    }

    /// Tells the kind from a document's top-level keys. `test` wins over `flow`
    /// (test files name their flow).
    pub fn detect(doc: &serde_json::Value) -> Option<FileKind> {
        let obj = doc.as_object()?;
        [
            FileKind::Test,
            FileKind::Project,
            FileKind::Mapping,
            FileKind::ValueMap,
            FileKind::Connector,
            FileKind::Flow,
        ]
        .into_iter()
        .find(|k| obj.contains_key(k.key()))
    }

    /// The JSON Schema of this kind, as generated from the Rust types.
    pub fn schema(self) -> schemars::Schema {
        let mut schema = match self {
            FileKind::Project => schemars::schema_for!(ProjectSpec),
            FileKind::Flow => schemars::schema_for!(FlowSpec),
            FileKind::Mapping => schemars::schema_for!(MappingSpec),
            FileKind::ValueMap => schemars::schema_for!(ValueMapSpec),
            FileKind::Connector => schemars::schema_for!(ConnectorSpec),
            FileKind::Test => schemars::schema_for!(FlowTestSpec),
        };
        schema.insert(
            "$id".into(),
            format!("https://cosync.dev/schemas/{}", self.schema_file()).into(),
        );
        schema
    }
}

/// A typed document of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// `cosync.yaml`.
    Project(ProjectSpec),
    /// A flow.
    Flow(FlowSpec),
    /// A mapping table.
    Mapping(MappingSpec),
    /// A value map.
    ValueMap(ValueMapSpec),
    /// A connector definition.
    Connector(ConnectorSpec),
    /// A flow test file.
    Test(FlowTestSpec),
}
