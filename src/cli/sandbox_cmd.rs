//! `cosync sandbox`: starts the emulator, prints exactly one line of JSON with the
//! services' base URLs on stdout when ready, logs to stderr, and stops cleanly on
//! SIGINT or SIGTERM (exit 0).

use std::io::Write;

use super::Outcome;
use super::args::SandboxArgs;
use super::project::runtime;
use crate::sandbox::{self, SandboxConfig};

/// Runs the sandbox until a termination signal.
pub(super) fn run(args: &SandboxArgs) -> Outcome {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .try_init();
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(outcome) => return outcome,
    };
    let config = SandboxConfig {
        port: args.port,
        state_file: args.state.clone(),
        seed_dir: args.seed.clone(),
        ..SandboxConfig::default()
    };
    runtime.block_on(async move {
        let handle = match sandbox::start(config).await {
            Ok(handle) => handle,
            Err(error) => {
                eprintln!("error: cannot start the sandbox: {error}");
                return Outcome::Usage;
            }
        };
        let line = serde_json::to_string(handle.urls()).unwrap_or_default();
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            eprintln!("error: cannot write to stdout");
        }
        drop(stdout);
        wait_for_signal().await;
        tracing::info!("stopping the sandbox");
        handle.shutdown().await;
        Outcome::Success
    })
}

#[cfg(unix)]
pub(super) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
pub(super) async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
