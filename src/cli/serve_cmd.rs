//! `cosync serve`: the sync service until SIGINT or SIGTERM. Prints one line of
//! JSON with its URLs on stdout when ready; logs (human or JSON) go to stderr.

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use super::Outcome;
use super::args::{LogFormat, ServeArgs};
use super::service_setup::{self, Overrides};

/// Runs the service until a termination signal; exit 0 after a graceful stop.
pub(super) fn run(args: &ServeArgs, color: bool) -> Outcome {
    service_setup::init_logging(args.log_format == LogFormat::Json);
    let project = match service_setup::load(&args.target, color) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let poll_interval = match args.poll_interval.as_deref() {
        Some(text) => match crate::spec::common::parse_duration(text) {
            Some(d) => Some(d),
            None => {
                eprintln!(
                    "error: --poll-interval `{text}` is not a duration like 500ms, 30s or 5m"
                );
                return Outcome::Usage;
            }
        },
        None => None,
    };
    let overrides = Overrides {
        listen: args.listen.clone(),
        workers: args.workers,
        poll_interval,
    };
    let runtime = match super::project::runtime() {
        Ok(r) => r,
        Err(o) => return o,
    };
    let state = service_setup::state_path(&project, &args.target);
    runtime.block_on(async move {
        let opened = match service_setup::open(project, &args.target).await {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                return Outcome::Usage;
            }
        };
        let store = match service_setup::open_store(&state) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: state store {e}");
                return Outcome::Usage;
            }
        };
        let config = match service_setup::service_config(&opened, store, &overrides) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return Outcome::Usage;
            }
        };
        let handle = match crate::service::start(config).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: cannot start the service: {e}");
                return Outcome::Usage;
            }
        };
        let addr = handle.addr();
        let line = json!({
            "webhook_url": handle.webhook_url(),
            "health_url": format!("http://{addr}/healthz"),
            "ready_url": format!("http://{addr}/readyz"),
            "metrics_url": format!("http://{addr}/metrics"),
            "environment": opened.env,
            "state": state.display().to_string(),
        });
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            eprintln!("error: cannot write to stdout");
        }
        drop(stdout);
        super::sandbox_cmd::wait_for_signal().await;
        tracing::info!("stopping: no new webhooks; finishing the events in flight");
        handle.shutdown(Duration::from_secs(20)).await;
        if let Some(sandbox) = opened.sandbox {
            sandbox.shutdown().await;
        }
        tracing::info!("stopped");
        Outcome::Success
    })
}
