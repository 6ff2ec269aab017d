//! The real binary: `cosync sandbox` prints one line of JSON with the URLs, serves,
//! and exits 0 on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{TestResult, client};

#[tokio::test]
async fn cosync_sandbox_prints_its_urls_serves_and_stops_on_sigterm() -> TestResult {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cosync"))
        .args(["sandbox", "--port", "0"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).map(|_| (line, reader))
    })
    .await??;
    let (line, mut reader) = line;
    let urls: Value = serde_json::from_str(line.trim())?;
    let keys: Vec<&String> = urls
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "partner_center",
            "partner_center_webhooks",
            "dataverse",
            "salesforce",
            "login",
            "admin"
        ]
    );
    let http = client();
    let admin = urls["admin"].as_str().unwrap_or_default();
    let info: Value = http
        .get(format!("{admin}/_sandbox"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(info["urls"], urls);
    let token = http
        .post(format!(
            "{}/services/oauth2/token",
            urls["salesforce"].as_str().unwrap_or_default()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", cosync::sandbox::SALESFORCE_CLIENT_ID),
            ("client_secret", cosync::sandbox::SALESFORCE_CLIENT_SECRET),
        ])
        .send()
        .await?;
    assert_eq!(token.status().as_u16(), 200);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait()? {
            break exit;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            return Err("the sandbox did not stop on SIGTERM".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0));
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(reader.get_mut(), &mut rest);
    assert!(
        rest.trim().is_empty(),
        "exactly one line on stdout, then: {rest}"
    );
    Ok(())
}
