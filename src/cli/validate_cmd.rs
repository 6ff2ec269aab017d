//! `cosync validate`.

use std::collections::HashMap;

use super::Outcome;
use super::args::ValidateArgs;
use crate::diag::render;
use crate::source::Loader;

/// Runs `cosync validate`.
pub fn run(args: &ValidateArgs, color: bool) -> Outcome {
    let outcome = match Loader::new().load(&args.paths) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Usage;
        }
    };
    let (project, diags) = crate::validate::validate(outcome);
    let sources: HashMap<String, String> = project
        .files
        .iter()
        .map(|f| (f.name.clone(), f.text.clone()))
        .collect();
    print!("{}", render::render(&diags, &sources, args.format, color));
    if diags.has_errors() {
        Outcome::Problems
    } else {
        Outcome::Success
    }
}
