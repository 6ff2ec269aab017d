//! Finds the files of a project, reads them and parses them into [`LoadedFile`]s.
//! Paths that do not exist or cannot be read are usage errors ([`LoadError`], exit
//! 2); problems inside files are diagnostics.

use std::path::{Path, PathBuf};

use super::span::LineIndex;
use super::yaml::{Located, parse_yaml};
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::spec::FileKind;

/// Largest file cosync reads (5 MiB); config files are far smaller.
pub const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;

/// A file that was read and (if possible) parsed.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// The path as shown to the user.
    pub name: String,
    /// The path on disk.
    pub path: PathBuf,
    /// The text (empty when the file could not be decoded).
    pub text: String,
    /// Line index of `text`.
    pub lines: LineIndex,
    /// The parsed document, when the YAML was valid.
    pub located: Option<Located>,
    /// The file's kind, when the document names one.
    pub kind: Option<FileKind>,
}

/// Everything read for one command.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// The files, in path order.
    pub files: Vec<LoadedFile>,
    /// Problems found while reading and parsing.
    pub diagnostics: Diagnostics,
    /// Entity metadata snapshots (`metadata/<connector>.json`, written by
    /// `cosync metadata pull`).
    pub metadata: Vec<MetadataSnapshot>,
}

/// A saved snapshot of a connector's entity metadata.
#[derive(Debug, Clone)]
pub struct MetadataSnapshot {
    /// The file, as shown to the user.
    pub name: String,
    /// The connector it describes.
    pub connector: String,
    /// Its `entities` (shaped like a connector definition's `entities:`).
    pub entities: serde_json::Value,
}

/// A problem with the command's paths themselves (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path that does not exist.
    #[error("{0}: no such file or directory")]
    Missing(String),
    /// A path that cannot be read.
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A directory with no YAML file in it.
    #[error("{0}: no cosync files (*.yaml, *.yml) found in this directory")]
    NoConfig(String),
}

/// Reads projects from paths.
#[derive(Debug, Default)]
pub struct Loader {
    _private: (),
}

impl Loader {
    /// A loader with default limits.
    pub fn new() -> Loader {
        Loader { _private: () }
    }

    /// Reads every YAML file under `paths` (files are taken as named; folders are
    /// searched recursively, skipping hidden folders and `target`).
    pub fn load(&self, paths: &[PathBuf]) -> Result<LoadOutcome, LoadError> {
        let mut outcome = LoadOutcome::default();
        let mut seen = std::collections::HashSet::new();
        for path in paths {
            let name = path.display().to_string();
            let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => LoadError::Missing(name.clone()),
                _ => LoadError::Unreadable {
                    path: name.clone(),
                    source: e,
                },
            })?;
            if meta.is_dir() {
                let mut found = Vec::new();
                discover(path, &mut found)?;
                read_snapshots(&path.join("metadata"), &mut outcome);
                if found.is_empty() {
                    return Err(LoadError::NoConfig(name));
                }
                found.sort();
                for file in found {
                    if seen.insert(canonical(&file)) {
                        self.read_file(&file, false, &mut outcome)?;
                    }
                }
            } else if seen.insert(canonical(path)) {
                self.read_file(path, true, &mut outcome)?;
            }
        }
        outcome.diagnostics.sort();
        Ok(outcome)
    }

    fn read_file(
        &self,
        path: &Path,
        explicit: bool,
        out: &mut LoadOutcome,
    ) -> Result<(), LoadError> {
        let name = path.display().to_string();
        let unreadable = |e| LoadError::Unreadable {
            path: name.clone(),
            source: e,
        };
        let size = std::fs::metadata(path).map_err(unreadable)?.len();
        let mut file = LoadedFile {
            name: name.clone(),
            path: path.to_path_buf(),
            text: String::new(),
            lines: LineIndex::new(""),
            located: None,
            kind: None,
        };
        if size > MAX_FILE_BYTES {
            out.diagnostics.push(
                Diagnostic::error(
                    Code::FileTooLarge,
                    format!(
                        "the file is {size} bytes; cosync reads files up to {MAX_FILE_BYTES} bytes"
                    ),
                )
                .in_file(&name)
                .with_help("split large definitions into several files"),
            );
            out.files.push(file);
            return Ok(());
        }
        let bytes = std::fs::read(path).map_err(unreadable)?;
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
                let lines = LineIndex::new(&prefix);
                let pos = lines.pos_of_byte(&prefix, valid);
                out.diagnostics.push(
                    Diagnostic::error(
                        Code::NotUtf8,
                        format!("the file is not UTF-8 text (invalid byte at offset {valid})"),
                    )
                    .in_file(&name)
                    .at(super::Span::point(pos))
                    .with_help("save the file as UTF-8"),
                );
                out.files.push(file);
                return Ok(());
            }
        };
        file.lines = LineIndex::new(&text);
        match parse_yaml(&text) {
            Ok(located) => {
                file.kind = FileKind::detect(&located.value);
                if file.kind.is_none() {
                    let keys: Vec<&str> = FileKind::ALL.iter().map(|k| k.key()).collect();
                    let first_key = located
                        .value
                        .as_object()
                        .and_then(|o| o.keys().next().cloned());
                    let mut d = if explicit {
                        Diagnostic::error(
                            Code::UnknownFileKind,
                            "this is not a cosync file: no top-level kind key",
                        )
                    } else {
                        Diagnostic::warning(
                            Code::UnknownFileKind,
                            "skipped: not a cosync file (no top-level kind key)",
                        )
                    };
                    d = d.in_file(&name).with_help(format!(
                        "a cosync file starts with one of `{}`",
                        keys.join("`, `")
                    ));
                    if let Some(first) = first_key {
                        let ptr = format!("/{}", super::escape_pointer(&first));
                        if let Some(span) = located.locate_key(&ptr) {
                            d = d.at(span).at_pointer(ptr);
                        }
                        if let Some(s) = crate::diag::did_you_mean(&first, keys.iter().copied()) {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                    }
                    out.diagnostics.push(d);
                }
                file.located = Some(located);
            }
            Err(ds) => out
                .diagnostics
                .extend(ds.into_iter().map(|d| d.in_file(&name))),
        }
        file.text = text;
        out.files.push(file);
        Ok(())
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn discover(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError::Unreadable {
        path: dir.display().to_string(),
        source: e,
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| LoadError::Unreadable {
            path: dir.display().to_string(),
            source: e,
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                discover(&path, found)?;
            }
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            found.push(path);
        }
    }
    Ok(())
}

/// Reads `DIR/*.json` metadata snapshots (a missing folder is no snapshot).
fn read_snapshots(dir: &Path, outcome: &mut LoadOutcome) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in files {
        let name = path.display().to_string();
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(v) => match (
                v.get("connector").and_then(|c| c.as_str()),
                v.get("entities"),
            ) {
                (Some(connector), Some(entities)) if entities.is_object() => {
                    outcome.metadata.push(MetadataSnapshot {
                        name,
                        connector: connector.to_string(),
                        entities: entities.clone(),
                    })
                }
                _ => outcome.diagnostics.push(
                    Diagnostic::error(
                        Code::Io,
                        "not a metadata snapshot: expected `connector` and `entities`",
                    )
                    .in_file(&name)
                    .with_help("write snapshots with `cosync metadata pull --env ENV`"),
                ),
            },
            Err(e) => outcome.diagnostics.push(
                Diagnostic::error(Code::Io, format!("cannot read the metadata snapshot: {e}"))
                    .in_file(&name)
                    .with_help("write snapshots with `cosync metadata pull --env ENV`"),
            ),
        }
    }
}
