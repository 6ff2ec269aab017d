//! `cosync demo`: the main job on the embedded default. Starts the sandbox and,
//! per CRM, the sync service in-process on free loopback ports (the other CRM's
//! flows disabled, as a partner with one CRM has them), registers the webhook
//! (overwriting), plays the seed's scenarios and prints what synced, in which
//! direction and how long it took. Exit 0 when every step synced, 1 otherwise.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::Outcome;
use super::args::{DemoArgs, DemoCrm, OutputFormat, ServiceTarget};
use super::service_setup::{self, Opened, Overrides};
use crate::demo::{Admin, Crm, StepResult};
use crate::service::RetryPolicy;

/// Runs the demo.
pub(super) fn run(args: &DemoArgs, color: bool) -> Outcome {
    if std::env::var_os("COSYNC_LOG").is_some() {
        service_setup::init_logging(false);
    }
    let (_dir, target) = match embedded_project() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Usage;
        }
    };
    let crms: Vec<Crm> = match args.crm {
        Some(DemoCrm::Dynamics365) => vec![Crm::Dynamics365],
        Some(DemoCrm::Salesforce) => vec![Crm::Salesforce],
        None => vec![Crm::Dynamics365, Crm::Salesforce],
    };
    let runtime = match super::project::runtime() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let results = runtime.block_on(async {
        let sandbox = crate::sandbox::start(crate::sandbox::SandboxConfig::default())
            .await
            .map_err(|e| format!("cannot start the sandbox: {e}"))?;
        let urls = sandbox.urls().clone();
        if args.format == OutputFormat::Human {
            println!("sandbox  {}", urls.admin);
        }
        let admin = Admin::new(&urls.admin)?;
        let mut results = Vec::new();
        for crm in &crms {
            let project = service_setup::load(&target, color)
                .map_err(|_| "the embedded project does not load".to_string())?;
            let phase = phase(project, &urls, *crm, &admin, timeout, args.format).await;
            match phase {
                Ok(r) => results.extend(r),
                Err(e) => {
                    sandbox.shutdown().await;
                    return Err(e);
                }
            }
        }
        sandbox.shutdown().await;
        Ok::<Vec<StepResult>, String>(results)
    });
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Problems;
        }
    };
    let ok = results.iter().all(|r| r.ok);
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": ok, "steps": results})).unwrap_or_default()
        ),
        OutputFormat::Human => print!("{}", table(&results)),
    }
    if ok {
        Outcome::Success
    } else {
        Outcome::Problems
    }
}

/// One CRM: its own service and state; the other CRM's flows disabled.
async fn phase(
    mut project: crate::compile::CompiledProject,
    urls: &crate::sandbox::SandboxUrls,
    crm: Crm,
    admin: &Admin,
    timeout: Duration,
    format: OutputFormat,
) -> Result<Vec<StepResult>, String> {
    let other = match crm {
        Crm::Dynamics365 => Crm::Salesforce,
        Crm::Salesforce => Crm::Dynamics365,
    };
    for f in &mut project.flows {
        if f.name.contains(other.key()) {
            f.enabled = false;
        }
    }
    let opened = sandbox_opened(project, urls, None)?;
    let state_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = service_setup::open_store(&state_dir.path().join("state.db"))?;
    let mut config = service_setup::service_config(
        &opened,
        store,
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            workers: Some(4),
            poll_interval: Some(Duration::from_millis(200)),
        },
    )?;
    config.retry = RetryPolicy {
        attempts: 5,
        initial: Duration::from_millis(200),
        max: Duration::from_secs(2),
    };
    let service = crate::service::start(config)
        .await
        .map_err(|e| format!("cannot start the service: {e}"))?;
    if format == OutputFormat::Human {
        println!(
            "{:<13}service {} (webhook registered, overwriting)",
            crm.label(),
            service.webhook_url()
        );
    }
    let registered =
        super::webhooks_cmd::register(&opened, &service.webhook_url(), &[], true).await;
    let results = match registered {
        Ok(_) => {
            let service_base = format!("http://{}", service.addr());
            let admin = admin.clone().with_service(&service_base);
            crate::demo::play(&admin, crm, timeout).await
        }
        Err(e) => vec![StepResult {
            crm,
            scenario: 0,
            action: "Register the webhook".into(),
            direction: "-".into(),
            ok: false,
            took: Duration::ZERO,
            detail: e,
        }],
    };
    service.shutdown(Duration::from_secs(5)).await;
    Ok(results)
}

fn table(results: &[StepResult]) -> String {
    let mut out = String::from("\n");
    out.push_str(&format!(
        "{:<13} {:<2} {:<21} {:<56} {:>8}  {}\n",
        "CRM", "#", "direction", "what", "took", "result"
    ));
    for r in results {
        out.push_str(&format!(
            "{:<13} {:<2} {:<21} {:<56} {:>6}ms  {} {}\n",
            r.crm.label(),
            r.scenario,
            r.direction,
            r.action,
            r.took.as_millis(),
            if r.ok { "ok" } else { "FAILED" },
            r.detail
        ));
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    out.push_str(&format!(
        "\n{} steps, {} synced, {} failed\n",
        results.len(),
        results.len() - failed,
        failed
    ));
    out
}

/// The shipped project written to a temporary folder (kept alive by the
/// returned guard), as a target of the `sandbox` environment.
pub(super) fn embedded_project() -> Result<(tempfile::TempDir, ServiceTarget), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    for (path, text) in crate::demo::embedded::FILES {
        let target = dir.path().join(path);
        target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&target, text))
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    }
    let target = ServiceTarget {
        project: dir.path().to_path_buf(),
        env: Some("sandbox".into()),
        state: None,
    };
    Ok((dir, target))
}

/// `project` connected to the sandbox at `urls`.
pub(super) fn sandbox_opened(
    project: crate::compile::CompiledProject,
    urls: &crate::sandbox::SandboxUrls,
    limits: Option<crate::spec::project::LimitsSpec>,
) -> Result<Opened, String> {
    let endpoints = super::environment::endpoints(urls);
    let set = match limits {
        Some(l) => {
            crate::connector::HttpConnectorSet::for_sandbox_with_limits(&project, &endpoints, l)
        }
        None => crate::connector::HttpConnectorSet::for_sandbox(&project, &endpoints),
    }
    .map_err(|e| e.to_string())?;
    Ok(Opened {
        project: Arc::new(project),
        env: "sandbox".into(),
        set: Arc::new(set),
        sandbox_urls: Some(urls.clone()),
        sandbox: None,
    })
}
