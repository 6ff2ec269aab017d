//! The commands. `main` parses arguments, runs one command and maps its outcome to
//! an exit status in one place: 0 success, 1 problems found, 2 usage or I/O errors.

pub mod args;
mod bench_cmd;
mod conflicts_cmd;
mod demo_cmd;
mod environment;
mod metadata_cmd;
mod project;
mod replay_cmd;
mod run_cmd;
mod runs_cmd;
mod sandbox_cmd;
pub mod schema_cmd;
mod serve_cmd;
mod service_setup;
mod sync_cmd;
mod sync_report;
mod table;
mod test_cmd;
pub mod validate_cmd;
mod webhooks_cmd;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

pub use args::{Args, ColorChoice, Command};

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: the command ran and found problems (or a test failed).
    Problems,
    /// Exit 2: bad usage or I/O.
    Usage,
}

impl Outcome {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Problems => 1,
            Outcome::Usage => 2,
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let outcome = match args.command {
        Command::Validate(a) => validate_cmd::run(&a, color),
        Command::Schema(a) => schema_cmd::run(&a),
        Command::Run(a) => run_cmd::run(&a, color),
        Command::Test(a) => test_cmd::run(&a, color),
        Command::Metadata(args::MetadataCommand::Pull(a)) => metadata_cmd::run(&a, color),
        Command::Sandbox(a) => sandbox_cmd::run(&a),
        Command::Serve(a) => serve_cmd::run(&a, color),
        Command::Demo(a) => demo_cmd::run(&a, color),
        Command::Bench(a) => bench_cmd::run(&a, color),
        Command::Webhooks(c) => webhooks_cmd::run(&c, color),
        Command::Runs(c) => runs_cmd::run(&c, color),
        Command::Replay(a) => replay_cmd::run(&a, color),
        Command::Conflicts(c) => conflicts_cmd::run(&c, color),
        Command::Sync(a) => sync_cmd::run(&a, color),
    };
    ExitCode::from(outcome.code())
}
