//! Stage 2: located documents → [`ValidProject`]. Runs the JSON Schema check on
//! every file, deserialises the typed model, then runs every lint rule, and returns
//! all diagnostics at once, sorted by file and position.

pub mod lint;
pub mod schema;

use std::collections::BTreeMap;

use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::source::{LoadOutcome, LoadedFile};
use crate::spec::{
    ConnectorSpec, Document, FileKind, FlowSpec, FlowTestSpec, MappingSpec, ProjectSpec,
    ValueMapSpec,
};

/// A definition together with the index of the file it came from.
#[derive(Debug, Clone)]
pub struct Defined<T> {
    /// The typed definition.
    pub spec: T,
    /// Index into [`ValidProject::files`].
    pub file: usize,
}

/// A project whose files all passed the schema check and deserialised. Lints may
/// still have reported errors; [`validate`] returns both.
#[derive(Debug, Clone, Default)]
pub struct ValidProject {
    /// Every file read, with its text and positions (for later diagnostics).
    pub files: Vec<LoadedFile>,
    /// `cosync.yaml`, if present.
    pub project: Option<Defined<ProjectSpec>>,
    /// Flows by name.
    pub flows: BTreeMap<String, Defined<FlowSpec>>,
    /// Mapping tables by name.
    pub mappings: BTreeMap<String, Defined<MappingSpec>>,
    /// Value maps by name.
    pub value_maps: BTreeMap<String, Defined<ValueMapSpec>>,
    /// Connector definitions by name.
    pub connectors: BTreeMap<String, Defined<ConnectorSpec>>,
    /// Flow test files by name.
    pub tests: BTreeMap<String, Defined<FlowTestSpec>>,
    /// Entity metadata snapshots by connector name.
    pub metadata: BTreeMap<String, crate::source::MetadataSnapshot>,
}

impl ValidProject {
    /// A diagnostic located at `pointer` in file `file`.
    pub fn diag(&self, file: usize, pointer: &str, d: Diagnostic) -> Diagnostic {
        let Some(f) = self.files.get(file) else {
            return d;
        };
        let mut d = d.in_file(&f.name).at_pointer(pointer);
        if let Some(span) = f.located.as_ref().and_then(|l| l.locate(pointer)) {
            d = d.at(span);
        }
        d
    }

    /// Like [`Self::diag`] but pointing at the key that introduces `pointer`.
    pub fn diag_key(&self, file: usize, pointer: &str, d: Diagnostic) -> Diagnostic {
        let Some(f) = self.files.get(file) else {
            return d;
        };
        let mut d = d.in_file(&f.name).at_pointer(pointer);
        if let Some(span) = f.located.as_ref().and_then(|l| l.locate_key(pointer)) {
            d = d.at(span);
        }
        d
    }
}

/// Validates everything that was loaded. Returns the project (built from every
/// file that passed the schema check) and all diagnostics, sorted.
pub fn validate(outcome: LoadOutcome) -> (ValidProject, Diagnostics) {
    let LoadOutcome {
        files,
        mut diagnostics,
        metadata,
    } = outcome;
    let mut project = ValidProject::default();
    let mut docs = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let (Some(kind), Some(located)) = (file.kind, &file.located) else {
            continue;
        };
        let errors = schema::check(kind, located);
        if !errors.is_empty() {
            diagnostics.extend(errors.into_iter().map(|d| d.in_file(&file.name)));
            continue;
        }
        match deserialize(kind, &located.value) {
            Ok(doc) => docs.push((index, doc)),
            Err((pointer, message)) => {
                let mut d = Diagnostic::error(Code::Schema, message)
                    .in_file(&file.name)
                    .at_pointer(&pointer);
                if let Some(span) = located.locate(&pointer) {
                    d = d.at(span);
                }
                diagnostics.push(d);
            }
        }
    }
    project.files = files;
    project.metadata = metadata
        .into_iter()
        .map(|m| (m.connector.clone(), m))
        .collect();
    for (file, doc) in docs {
        add(&mut project, file, doc, &mut diagnostics);
    }
    lint::run_all(&project, &mut diagnostics);
    diagnostics.sort();
    (project, diagnostics)
}

fn deserialize(kind: FileKind, value: &serde_json::Value) -> Result<Document, (String, String)> {
    fn typed<T: serde::de::DeserializeOwned>(
        value: &serde_json::Value,
    ) -> Result<T, (String, String)> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let pointer = path_to_pointer(e.path());
            (pointer, e.into_inner().to_string())
        })
    }
    Ok(match kind {
        FileKind::Project => Document::Project(typed(value)?),
        FileKind::Flow => Document::Flow(typed(value)?),
        FileKind::Mapping => Document::Mapping(typed(value)?),
        FileKind::ValueMap => Document::ValueMap(typed(value)?),
        FileKind::Connector => Document::Connector(typed(value)?),
        FileKind::Test => Document::Test(typed(value)?),
    })
}

fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                out.push_str(&format!("/{}", crate::source::escape_pointer(key)))
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// A `duplicate-name` diagnostic at the kind key of file `file`.
fn duplicate(
    files: &[LoadedFile],
    file: usize,
    key: &str,
    message: String,
    help: &str,
) -> Diagnostic {
    let pointer = format!("/{key}");
    let Some(f) = files.get(file) else {
        return Diagnostic::error(Code::DuplicateName, message);
    };
    let mut d = Diagnostic::error(Code::DuplicateName, message)
        .in_file(&f.name)
        .at_pointer(&pointer)
        .with_help(help);
    if let Some(span) = f.located.as_ref().and_then(|l| l.locate(&pointer)) {
        d = d.at(span);
    }
    d
}

/// Adds a named definition, reporting a second definition of the same name.
fn insert<T>(
    map: &mut BTreeMap<String, Defined<T>>,
    files: &[LoadedFile],
    (what, key): (&str, &str),
    name: String,
    defined: Defined<T>,
    out: &mut Diagnostics,
) {
    match map.get(&name) {
        Some(first) => {
            let first_file = files.get(first.file).map_or("?", |f| f.name.as_str());
            let message = format!("a {what} named `{name}` is already defined in {first_file}");
            out.push(duplicate(
                files,
                defined.file,
                key,
                message,
                &format!("rename one of the two {what}s"),
            ));
        }
        None => {
            map.insert(name, defined);
        }
    }
}

fn add(project: &mut ValidProject, file: usize, doc: Document, out: &mut Diagnostics) {
    let files = &project.files;
    match doc {
        Document::Project(spec) => match &project.project {
            Some(first) => {
                let first_file = files.get(first.file).map_or("?", |f| f.name.as_str());
                let message = format!("a second project file; the first is {first_file}");
                out.push(duplicate(
                    files,
                    file,
                    "project",
                    message,
                    "validate one project at a time",
                ));
            }
            None => project.project = Some(Defined { spec, file }),
        },
        Document::Flow(spec) => {
            let name = spec.flow.clone();
            insert(
                &mut project.flows,
                files,
                ("flow", "flow"),
                name,
                Defined { spec, file },
                out,
            )
        }
        Document::Mapping(spec) => {
            let name = spec.mapping.clone();
            insert(
                &mut project.mappings,
                files,
                ("mapping table", "mapping"),
                name,
                Defined { spec, file },
                out,
            )
        }
        Document::ValueMap(spec) => {
            let name = spec.value_map.clone();
            insert(
                &mut project.value_maps,
                files,
                ("value map", "value_map"),
                name,
                Defined { spec, file },
                out,
            )
        }
        Document::Connector(spec) => {
            let name = spec.connector.clone();
            insert(
                &mut project.connectors,
                files,
                ("connector", "connector"),
                name,
                Defined { spec, file },
                out,
            )
        }
        Document::Test(spec) => {
            let name = spec.test.clone();
            insert(
                &mut project.tests,
                files,
                ("test suite", "test"),
                name,
                Defined { spec, file },
                out,
            )
        }
    }
}
