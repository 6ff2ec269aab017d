//! Loading a project for commands that run it: read, validate (printing
//! diagnostics on errors), compile.

use std::collections::HashMap;
use std::path::PathBuf;

use super::Outcome;
use crate::compile::{CompiledProject, compile};
use crate::diag::render::{Format, render};
use crate::source::Loader;

/// Loads, validates and compiles the project at `paths`; on failure prints why and
/// returns the exit outcome.
pub(super) fn load(paths: &[PathBuf], color: bool) -> Result<CompiledProject, Outcome> {
    let outcome = Loader::new().load(paths).map_err(|e| {
        eprintln!("error: {e}");
        Outcome::Usage
    })?;
    let (valid, diags) = crate::validate::validate(outcome);
    if diags.has_errors() {
        let sources: HashMap<String, String> = valid
            .files
            .iter()
            .map(|f| (f.name.clone(), f.text.clone()))
            .collect();
        eprint!("{}", render(&diags, &sources, Format::Human, color));
        eprintln!("error: the project has errors; fix them first (`cosync validate`)");
        return Err(Outcome::Problems);
    }
    compile(&valid).map_err(|e| {
        eprintln!("error: internal: {e}");
        Outcome::Problems
    })
}

/// A multi-threaded tokio runtime for commands that do I/O.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Outcome> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            Outcome::Usage
        })
}
