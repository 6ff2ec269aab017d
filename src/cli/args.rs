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
    /// Run one flow once for an event, and print its run record.
    ///
    /// `--dry-run` performs reads but plans writes, and prints them as a per-field diff.
    Run(RunArgs),
    /// Run flow test files (`test:` files) offline; exit 1 if any case fails.
    Test(TestArgs),
    /// Entity metadata of an org: `cosync metadata pull --env ENV` saves it as
    /// `metadata/<connector>.json` for `cosync validate` to check mappings against.
    #[command(subcommand)]
    Metadata(MetadataCommand),
    /// Run the local emulator of Partner Center, Dataverse, Salesforce and their token endpoints.
    ///
    /// Prints one line of JSON with the services' base URLs when ready; logs go to stderr;
    /// stops on SIGINT or SIGTERM.
    Sandbox(SandboxArgs),
}

/// Arguments of `cosync sandbox`.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Port of the admin API (`/_sandbox/`); 0 = a free port. The services always take free ports.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// SQLite file that keeps the records across restarts (default: in memory).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Folder of `*.json` seed documents, applied to an empty state and on reset.
    #[arg(long)]
    pub seed: Option<PathBuf>,
}

/// Arguments of `cosync run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The flow's name.
    pub flow: String,
    /// JSON file with the event: a Partner Center webhook payload, a CRM record, or
    /// the trigger variables themselves.
    #[arg(long)]
    pub event: PathBuf,
    /// Environment from cosync.yaml (default: its `default_environment`, else
    /// `sandbox`). A `sandbox: true` environment runs over HTTP against the embedded
    /// sandbox, started in-process (or the one `COSYNC_SANDBOX` names) and seeded
    /// with `--fixtures`.
    #[arg(long)]
    pub env: Option<String>,
    /// The project folder.
    #[arg(short, long, default_value = ".")]
    pub project: PathBuf,
    /// YAML or JSON file of records (`connector: { entity: [records] }`): seeds the
    /// sandbox, or — for other environments — is run against in memory instead of
    /// the real services.
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    /// Read, but only plan writes.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Arguments of `cosync test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Project files or folders; every test file among them runs.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Only cases (or suites) whose name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Output formats of commands that report results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Human,
    /// For machines.
    Json,
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

/// `cosync metadata` subcommands.
#[derive(Debug, Subcommand)]
pub enum MetadataCommand {
    /// Pull field names, types and picklist values of every CRM connector's entities.
    Pull(MetadataArgs),
}

/// Arguments of `cosync metadata pull`.
#[derive(Debug, clap::Args)]
pub struct MetadataArgs {
    /// Environment from cosync.yaml (default: its `default_environment`).
    #[arg(long)]
    pub env: Option<String>,
    /// The project folder.
    #[arg(short, long, default_value = ".")]
    pub project: PathBuf,
    /// Folder for the snapshots (default: PROJECT/metadata).
    #[arg(long)]
    pub out: Option<PathBuf>,
}
