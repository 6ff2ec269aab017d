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
    /// Run the sync service: the Partner Center webhook receiver, CRM polling and
    /// the workers that run the flows, until SIGINT or SIGTERM.
    ///
    /// Prints one line of JSON (`{"webhook_url": ..., "health_url": ..., "metrics_url": ...}`)
    /// on stdout when ready; logs go to stderr.
    Serve(ServeArgs),
    /// Play the co-sell scenarios end to end against the built-in sandbox, for
    /// Dynamics 365 and Salesforce, and show what synced and how fast.
    Demo(DemoArgs),
    /// The Partner Center webhook registration: register, show, send a test event.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Reconcile every referral and every flagged CRM opportunity, both directions.
    Sync(SyncArgs),
    /// Run history (stored by `cosync serve`).
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Re-run dead letters (events that failed every attempt).
    Replay(ReplayArgs),
    /// Fields changed on both sides, parked for a person (policy `manual`).
    #[command(subcommand)]
    Conflicts(ConflictsCommand),
    /// Measure the service: N referral events through webhook → queue → flow → CRM
    /// write against the sandbox; throughput, latency percentiles, API calls per change.
    Bench(BenchArgs),
}

/// Where a service command finds its project, environment and state.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceTarget {
    /// The project folder.
    #[arg(short, long, default_value = ".")]
    pub project: PathBuf,
    /// Environment from cosync.yaml (default: its `default_environment`). A
    /// `sandbox: true` environment uses the sandbox whose JSON line is in
    /// `COSYNC_SANDBOX`, else one started in-process.
    #[arg(long)]
    pub env: Option<String>,
    /// The state file (default: cosync.yaml's `state.path`, relative to the project).
    #[arg(long)]
    pub state: Option<PathBuf>,
}

/// Arguments of `cosync serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Project, environment, state.
    #[command(flatten)]
    pub target: ServiceTarget,
    /// Address to listen on (default: cosync.yaml's `server.listen`; port 0 = a free port).
    #[arg(long)]
    pub listen: Option<String>,
    /// Records processed in parallel (default: `server.workers`).
    #[arg(long)]
    pub workers: Option<usize>,
    /// CRM poll interval, e.g. `500ms` (default: `server.poll_interval`).
    #[arg(long)]
    pub poll_interval: Option<String>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people.
    Human,
    /// One JSON object per line.
    Json,
}

/// Arguments of `cosync demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Only this CRM.
    #[arg(long, value_enum)]
    pub crm: Option<DemoCrm>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Give up on a scenario step after this many seconds.
    #[arg(long, default_value_t = 20)]
    pub timeout: u64,
}

/// The CRMs of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoCrm {
    /// Dynamics 365 (Dataverse).
    Dynamics365,
    /// Salesforce.
    Salesforce,
}

/// `cosync webhooks` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register (or with `--replace`, overwrite) the webhook URL for referral events.
    Register(WebhooksRegisterArgs),
    /// Show the current registration.
    List(WebhooksArgs),
    /// Ask Partner Center to send a test event, and show its delivery result.
    Test(WebhooksArgs),
}

/// Arguments of `cosync webhooks list|test`.
#[derive(Debug, clap::Args)]
pub struct WebhooksArgs {
    /// Project, environment, state.
    #[command(flatten)]
    pub target: ServiceTarget,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Arguments of `cosync webhooks register`.
#[derive(Debug, clap::Args)]
pub struct WebhooksRegisterArgs {
    /// Project, environment, state.
    #[command(flatten)]
    pub target: ServiceTarget,
    /// The public https URL of `cosync serve`'s `/webhooks/partner-center` (default: `server.public_url`).
    #[arg(long)]
    pub url: Option<String>,
    /// Event names (default: referral-created, referral-updated).
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,
    /// Overwrite an existing registration.
    #[arg(long)]
    pub replace: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Arguments of `cosync sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Project, environment, state.
    #[command(flatten)]
    pub target: ServiceTarget,
    /// Every referral and every flagged opportunity (the only mode today).
    #[arg(long)]
    pub full: bool,
    /// Read everything, write nothing; report what would be created, updated or conflict.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// `cosync runs` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recent runs, newest first.
    List(RunsListArgs),
    /// One run's record, step by step.
    Show(RunsShowArgs),
}

/// Arguments of `cosync runs list`.
#[derive(Debug, clap::Args)]
pub struct RunsListArgs {
    /// Project, environment, state.
    #[command(flatten)]
    pub target: ServiceTarget,
    /// How many.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Arguments of `cosync runs show`.
#[derive(Debug, clap::Args)]
pub struct RunsShowArgs {
    /// Project, environment, state.
    #[command(flatten)]
    pub target: ServiceTarget,
    /// The run id.
    pub id: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Arguments of `cosync replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Project, environment, state.
    #[command(flatten)]
    pub target: ServiceTarget,
    /// The dead letter's event id.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<i64>,
    /// Every dead letter.
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// `cosync conflicts` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// Open conflicts (with `--all`, resolved ones too).
    List(ConflictsListArgs),
    /// Resolve a conflict by taking one side's value.
    Resolve(ConflictsResolveArgs),
}

/// Arguments of `cosync conflicts list`.
#[derive(Debug, clap::Args)]
pub struct ConflictsListArgs {
    /// Project, environment, state.
    #[command(flatten)]
    pub target: ServiceTarget,
    /// Include resolved conflicts.
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// The side whose value wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Side {
    /// Partner Center's value.
    #[value(name = "partner_center")]
    PartnerCenter,
    /// The CRM's value.
    Crm,
}

/// Arguments of `cosync conflicts resolve`.
#[derive(Debug, clap::Args)]
pub struct ConflictsResolveArgs {
    /// Project, environment, state.
    #[command(flatten)]
    pub target: ServiceTarget,
    /// The conflict id.
    pub id: i64,
    /// Whose value to keep.
    #[arg(long, value_enum)]
    pub take: Side,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Arguments of `cosync bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Referral events to drive through the service.
    #[arg(long, default_value_t = 2000)]
    pub events: usize,
    /// Offered load in events per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Records processed in parallel (16: the most events per second on a
    /// 2-core machine; more workers cost more CPU per event, see BENCHMARKS.md).
    #[arg(long, default_value_t = 16)]
    pub workers: usize,
    /// State file of the service, e.g. on the disk it will run on; it must not
    /// exist and is kept for inspection (default: a temporary file, removed).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
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
