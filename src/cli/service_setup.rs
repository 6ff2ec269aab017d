//! What the service commands (`serve`, `sync`, `webhooks`, `runs`, `replay`,
//! `conflicts`, `demo`, `bench`) share: the project, the environment's HTTP
//! connectors (the embedded sandbox for `sandbox: true`), the state store, and
//! the [`ServiceConfig`] built from `cosync.yaml`'s `server:` section.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Outcome;
use super::args::ServiceTarget;
use crate::compile::CompiledProject;
use crate::connector::HttpConnectorSet;
use crate::sandbox::{SandboxHandle, SandboxUrls};
use crate::server::verify::{HttpFetcher, MICROSOFT_ISSUER, Verifier};
use crate::service::{RetryPolicy, ServiceConfig};
use crate::spec::project::{ConnectionSpec, ProjectSpec, ServerSpec};
use crate::store::Store;

/// A project opened against one environment.
pub(super) struct Opened {
    /// The compiled project.
    pub project: Arc<CompiledProject>,
    /// The environment's name.
    pub env: String,
    /// The connectors over HTTP.
    pub set: Arc<HttpConnectorSet>,
    /// The sandbox in use (running elsewhere, or in-process below).
    pub sandbox_urls: Option<SandboxUrls>,
    /// The in-process sandbox, when one was started.
    pub sandbox: Option<SandboxHandle>,
}

/// Loads and compiles the project (printing diagnostics on errors).
pub(super) fn load(target: &ServiceTarget, color: bool) -> Result<CompiledProject, Outcome> {
    super::project::load(std::slice::from_ref(&target.project), color)
}

/// The environment's name: `--env`, else `default_environment`, else `sandbox`.
pub(super) fn env_name(project: &CompiledProject, env: Option<&str>) -> String {
    env.map(str::to_string)
        .or_else(|| {
            project
                .project
                .as_ref()
                .and_then(|p| p.default_environment.clone())
        })
        .unwrap_or_else(|| "sandbox".to_string())
}

/// The state file: `--state`, else `state.path` relative to the project folder.
pub(super) fn state_path(project: &CompiledProject, target: &ServiceTarget) -> PathBuf {
    if let Some(p) = &target.state {
        return p.clone();
    }
    let configured = project
        .project
        .as_ref()
        .and_then(|p| p.state.as_ref())
        .and_then(|s| s.path.clone())
        .unwrap_or_else(|| ".cosync/state.db".to_string());
    let path = Path::new(&configured);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        target.project.join(path)
    }
}

/// Opens the state store.
pub(super) fn open_store(path: &Path) -> Result<Arc<Store>, String> {
    Store::open(path)
        .map(Arc::new)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Connects to the environment's services (starting the sandbox in-process for
/// a `sandbox: true` environment when `COSYNC_SANDBOX` names none).
pub(super) async fn open(
    project: CompiledProject,
    target: &ServiceTarget,
) -> Result<Opened, String> {
    let env = env_name(&project, target.env.as_deref());
    let environment = project
        .project
        .as_ref()
        .and_then(|p| p.environments.get(&env))
        .cloned();
    let is_sandbox = match &environment {
        Some(e) => e.sandbox,
        None if env == "sandbox" => true,
        None => return Err(format!("no environment named `{env}` in cosync.yaml")),
    };
    if !is_sandbox {
        let connections = environment.map(|e| e.connections).unwrap_or_default();
        let set = HttpConnectorSet::new(&project, &connections).map_err(|e| e.to_string())?;
        return Ok(Opened {
            project: Arc::new(project),
            env,
            set: Arc::new(set),
            sandbox_urls: None,
            sandbox: None,
        });
    }
    let (urls, handle) = match std::env::var("COSYNC_SANDBOX") {
        Ok(line) => (
            serde_json::from_str::<SandboxUrls>(&line)
                .map_err(|e| format!("COSYNC_SANDBOX is not the sandbox's JSON line: {e}"))?,
            None,
        ),
        Err(_) => {
            let handle = crate::sandbox::start(crate::sandbox::SandboxConfig::default())
                .await
                .map_err(|e| format!("cannot start the sandbox: {e}"))?;
            (handle.urls().clone(), Some(handle))
        }
    };
    let set = HttpConnectorSet::for_sandbox(&project, &super::environment::endpoints(&urls))
        .map_err(|e| e.to_string())?;
    Ok(Opened {
        project: Arc::new(project),
        env,
        set: Arc::new(set),
        sandbox_urls: Some(urls),
        sandbox: handle,
    })
}

/// `host` or `host:port` of a URL.
fn host_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?;
    Some(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// Overrides of `server:` settings from the command line.
#[derive(Debug, Clone, Default)]
pub(super) struct Overrides {
    pub listen: Option<String>,
    pub workers: Option<usize>,
    pub poll_interval: Option<Duration>,
}

/// The service configuration for an opened project.
pub(super) fn service_config(
    opened: &Opened,
    store: Arc<Store>,
    overrides: &Overrides,
) -> Result<ServiceConfig, String> {
    let server: ServerSpec = opened
        .project
        .project
        .as_ref()
        .and_then(|p| p.server.clone())
        .unwrap_or_default();
    let listen_text = overrides
        .listen
        .clone()
        .or(server.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listen: SocketAddr = listen_text
        .parse()
        .map_err(|e| format!("listen address `{listen_text}`: {e}"))?;
    let d = |v: Option<&crate::spec::common::Duration>, default: Duration| {
        v.and_then(|d| d.to_std()).unwrap_or(default)
    };
    let retry = server.retry.clone().unwrap_or_default();
    let retry = RetryPolicy {
        attempts: retry.attempts.unwrap_or(8).clamp(1, 100),
        initial: d(retry.initial_backoff.as_ref(), Duration::from_secs(30)),
        max: d(retry.max_backoff.as_ref(), Duration::from_secs(1800)),
    };
    let mut certificate_hosts = server.certificate_hosts.clone();
    let mut resource_hosts = Vec::new();
    match &opened.sandbox_urls {
        Some(urls) => {
            // The sandbox signs with its own certificate, served by its admin API.
            certificate_hosts.extend(host_of(&urls.admin));
            resource_hosts.extend(host_of(&urls.partner_center_webhooks));
            resource_hosts.extend(host_of(&urls.partner_center));
        }
        None => {
            let connection = partner_center_connection(opened);
            for url in connection
                .iter()
                .flat_map(|c| [c.base_url.as_deref(), c.webhooks_url.as_deref()])
                .flatten()
                .filter(|u| !u.contains("${"))
            {
                resource_hosts.extend(host_of(url));
            }
            if resource_hosts.is_empty() {
                resource_hosts = vec![
                    "api.partnercenter.microsoft.com".into(),
                    "api.partner.microsoft.com".into(),
                ];
            }
        }
    }
    if certificate_hosts.is_empty() {
        certificate_hosts.push("3psostorageacct.blob.core.windows.net".into());
    }
    let fetcher = HttpFetcher::new()?;
    let dataverse_key = match server.dataverse_webhook_key.as_deref() {
        None => None,
        Some(text) if !crate::connector::secrets::has_reference(text) => {
            return Err(
                "server.dataverse_webhook_key must be a secret reference (`${env:NAME}` or `${file:PATH}`), not the key itself"
                    .into(),
            );
        }
        Some(text) => {
            let key = crate::connector::secrets::resolve(text)
                .map_err(|e| format!("server.dataverse_webhook_key: {e}"))?;
            if key.expose().len() < 16 {
                return Err(
                    "server.dataverse_webhook_key: the key is shorter than 16 characters".into(),
                );
            }
            Some(key)
        }
    };
    Ok(ServiceConfig {
        dataverse_key,
        keep_runs: Some(keep_runs(opened.project.project.as_ref())),
        project: opened.project.clone(),
        connectors: opened.set.clone(),
        store,
        listen,
        max_body_bytes: server
            .max_body_bytes
            .unwrap_or(65_536)
            .clamp(1024, 16 << 20) as usize,
        workers: overrides
            .workers
            .or(server.workers.map(|w| w as usize))
            .unwrap_or(4)
            .clamp(1, 256),
        retry,
        verifier: Arc::new(Verifier::new(
            certificate_hosts,
            MICROSOFT_ISSUER,
            Box::new(fetcher),
        )),
        resource_hosts,
        poll_interval: overrides
            .poll_interval
            .or_else(|| server.poll_interval.as_ref().and_then(|d| d.to_std()))
            .unwrap_or(Duration::from_secs(30)),
        poll_from: None,
        mirror: {
            let spec = server.mirror.clone().unwrap_or_default();
            let default = crate::service::mirror::MirrorLimits::default();
            crate::service::mirror::MirrorLimits {
                ttl: spec
                    .ttl
                    .as_ref()
                    .and_then(|d| d.to_std())
                    .unwrap_or(default.ttl),
                records: spec.records.map_or(default.records, |n| n as usize),
            }
        },
    })
}

/// How long run records and finished events are kept: `state.keep_runs`, else
/// 30 days. A zero or malformed value (which `cosync validate` reports) falls
/// back to the default rather than deleting the whole history.
pub(super) fn keep_runs(project: Option<&ProjectSpec>) -> Duration {
    project
        .and_then(|p| p.state.as_ref())
        .and_then(|s| s.keep_runs.as_ref())
        .and_then(|d| d.to_std())
        .filter(|d| !d.is_zero())
        .unwrap_or(KEEP_RUNS)
}

/// The default of `state.keep_runs`.
const KEEP_RUNS: Duration = Duration::from_secs(30 * 86_400);

/// The connection of the project's `partner_center` connector in this environment.
fn partner_center_connection(opened: &Opened) -> Option<ConnectionSpec> {
    let c = opened
        .project
        .connectors
        .iter()
        .find(|c| c.spec.kind == crate::spec::connector::ConnectorKind::PartnerCenter)?;
    opened
        .project
        .project
        .as_ref()?
        .environments
        .get(&opened.env)?
        .connections
        .get(&c.name)
        .cloned()
}

/// Starts logging to stderr (`COSYNC_LOG` filters; default `info`).
pub(super) fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// The state store of a command that only reads or edits the state (`runs`,
/// `replay`, `conflicts`): `--state`, else the project's `state.path` (the
/// project is loaded only to find it). A missing file is an error, not a new
/// empty store.
pub(super) fn open_existing_state(
    target: &ServiceTarget,
    color: bool,
) -> Result<Arc<Store>, Outcome> {
    let path = match &target.state {
        Some(p) => p.clone(),
        None => state_path(&load(target, color)?, target),
    };
    if !path.exists() {
        eprintln!(
            "error: no state file at {}: nothing has run yet (`cosync serve` and `cosync sync --full` create it; `--state` names another)",
            path.display()
        );
        return Err(Outcome::Usage);
    }
    open_store(&path).map_err(|e| {
        eprintln!("error: {e}");
        Outcome::Usage
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(state: serde_json::Value) -> ProjectSpec {
        serde_json::from_value(serde_json::json!({
            "project": "p", "environments": {}, "state": state
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn keep_runs_is_the_projects_else_thirty_days() {
        let day = Duration::from_secs(86_400);
        assert_eq!(keep_runs(None), 30 * day);
        assert_eq!(keep_runs(Some(&project(serde_json::json!({})))), 30 * day);
        assert_eq!(
            keep_runs(Some(&project(serde_json::json!({"keep_runs": "7d"})))),
            7 * day
        );
        // Refused by `cosync validate`; never read as "delete everything".
        assert_eq!(
            keep_runs(Some(&project(serde_json::json!({"keep_runs": "0s"})))),
            30 * day
        );
    }
}
