//! Command-line arguments (clap derive structs only; no I/O here).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::diag::render::Format;

/// Two-way sync of Partner Center co-sell referrals with Dynamics 365 and Salesforce,
/// driven by declarative YAML.
#[derive(Debug, Parser)]
#[command(name = "cosync", version, about, long_about = None)]
pub struct Args {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
    /// When to colour output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
}

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal only.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check project files: YAML syntax, JSON Schema and semantic lints, all problems in one pass.
    ///
    /// Exit status: 0 no errors (warnings allowed), 1 errors, 2 usage or I/O problems.
    Validate(ValidateArgs),
    /// Write the JSON Schema (draft 2020-12) of every file kind.
    Schema(SchemaArgs),
}

/// Arguments of `cosync validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Files or folders (searched recursively for *.yaml / *.yml); all of them form one project.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Arguments of `cosync schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Folder to write the schemas to.
    #[arg(long, default_value = "schemas")]
    pub out: PathBuf,
    /// Do not write; exit 1 when the folder differs from the generated schemas.
    #[arg(long)]
    pub check: bool,
}
