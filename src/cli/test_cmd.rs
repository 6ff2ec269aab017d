//! `cosync test`.

use super::Outcome;
use super::args::{OutputFormat, TestArgs};

/// Runs `cosync test`.
pub(super) fn run(args: &TestArgs, color: bool) -> Outcome {
    let project = match super::project::load(&args.paths, color) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let rt = match super::project::runtime() {
        Ok(rt) => rt,
        Err(o) => return o,
    };
    let results = rt.block_on(crate::flowtest::run_all(&project, args.filter.as_deref()));
    match args.format {
        OutputFormat::Human => print!("{}", crate::flowtest::human(&results)),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_else(|_| "[]".into())
        ),
    }
    if results.is_empty() {
        eprintln!("warning: no test cases found");
    }
    if results.iter().all(|r| r.passed) {
        Outcome::Success
    } else {
        Outcome::Problems
    }
}
