//! `cosync webhooks register|list|test`: Microsoft's webhook registration flow
//! as commands, over the Partner Center connector's webhook operations.

use serde_json::{Value, json};

use super::Outcome;
use super::args::{OutputFormat, WebhooksCommand, WebhooksRegisterArgs};
use super::service_setup::{self, Opened};
use crate::runtime::{ConnectorSet, Request};
use crate::spec::connector::ConnectorKind;

/// The events the shipped Partner Center to CRM flows handle.
const DEFAULT_EVENTS: &[&str] = &["referral-created", "referral-updated"];

/// Runs a `cosync webhooks` subcommand.
pub(super) fn run(command: &WebhooksCommand, color: bool) -> Outcome {
    let (target, format) = match command {
        WebhooksCommand::Register(a) => (&a.target, a.format),
        WebhooksCommand::List(a) | WebhooksCommand::Test(a) => (&a.target, a.format),
    };
    let project = match service_setup::load(target, color) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let runtime = match super::project::runtime() {
        Ok(r) => r,
        Err(o) => return o,
    };
    runtime.block_on(async {
        let opened = match service_setup::open(project, target).await {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                return Outcome::Usage;
            }
        };
        let result = match command {
            WebhooksCommand::Register(a) => register_cmd(&opened, a).await,
            WebhooksCommand::List(_) => call(&opened, "get_webhook_registration", json!({})).await,
            WebhooksCommand::Test(_) => test(&opened).await,
        };
        if let Some(s) = opened.sandbox {
            s.shutdown().await;
        }
        match result {
            Ok(v) => {
                match format {
                    OutputFormat::Json => {
                        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
                    }
                    OutputFormat::Human => print!("{}", human(&v)),
                }
                Outcome::Success
            }
            Err(e) => {
                eprintln!("error: {e}");
                Outcome::Problems
            }
        }
    })
}

fn human(v: &Value) -> String {
    let mut out = String::new();
    if let Some(url) = v.get("WebhookUrl").and_then(Value::as_str) {
        out.push_str(&format!("webhook url: {url}\n"));
    }
    if let Some(events) = v.get("WebhookEvents").and_then(Value::as_array) {
        let names: Vec<&str> = events.iter().filter_map(Value::as_str).collect();
        out.push_str(&format!("events:      {}\n", names.join(", ")));
    }
    if out.is_empty() {
        out = format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default());
    }
    out
}

/// Calls a webhook operation of the project's Partner Center connector.
pub(super) async fn call(opened: &Opened, operation: &str, inputs: Value) -> Result<Value, String> {
    let connector = opened
        .project
        .connectors
        .iter()
        .find(|c| c.spec.kind == ConnectorKind::PartnerCenter)
        .ok_or("the project has no partner_center connector")?;
    let id = opened
        .project
        .connector_id(&connector.name)
        .ok_or("the project has no partner_center connector")?;
    opened
        .set
        .execute(Request::Call {
            connector: id,
            operation: operation.into(),
            inputs,
        })
        .await
        .map_err(|e| format!("{operation}: {}", e.message))
}

/// Registers `url` for `events` (the defaults when empty), overwriting an
/// existing registration when `replace`. Checks the events against the ones
/// Partner Center offers, and that the URL is https (plain http is accepted only
/// against the sandbox).
pub(super) async fn register(
    opened: &Opened,
    url: &str,
    events: &[String],
    replace: bool,
) -> Result<Value, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if parsed.scheme() != "https" && !(opened.sandbox_urls.is_some() && parsed.scheme() == "http") {
        return Err(format!(
            "Partner Center only delivers to https endpoints; got {url}"
        ));
    }
    let events: Vec<String> = if events.is_empty() {
        DEFAULT_EVENTS.iter().map(|s| s.to_string()).collect()
    } else {
        events.to_vec()
    };
    let offered = call(opened, "list_webhook_events", json!({})).await?;
    let offered: Vec<String> = offered
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !offered.is_empty() {
        let unknown: Vec<&String> = events.iter().filter(|e| !offered.contains(e)).collect();
        if !unknown.is_empty() {
            return Err(format!(
                "unknown events {}; Partner Center offers {}",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                offered.join(", ")
            ));
        }
    }
    if !replace {
        let existing = call(opened, "get_webhook_registration", json!({})).await;
        if let Ok(v) = existing
            && v.get("WebhookUrl").is_some_and(|u| !u.is_null())
        {
            return Err(format!(
                "a webhook is already registered ({}); pass --replace to overwrite it",
                v["WebhookUrl"]
            ));
        }
    }
    call(
        opened,
        "register_webhook",
        json!({"url": url, "events": events, "replace": replace}),
    )
    .await
}

async fn register_cmd(opened: &Opened, a: &WebhooksRegisterArgs) -> Result<Value, String> {
    let url = a
        .url
        .clone()
        .or_else(|| {
            opened
                .project
                .project
                .as_ref()
                .and_then(|p| p.server.as_ref())
                .and_then(|s| s.public_url.clone())
                .filter(|u| !u.contains("${"))
        })
        .ok_or("no URL: pass --url or set server.public_url in cosync.yaml")?;
    register(opened, &url, &a.events, a.replace).await
}

/// Sends a test event and reads its delivery result (polling for up to 10 s).
async fn test(opened: &Opened) -> Result<Value, String> {
    let sent = call(opened, "send_test_event", json!({})).await?;
    let id = sent
        .get("correlationId")
        .or_else(|| sent.get("CorrelationId"))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the test event answer has no correlationId: {sent}"))?
        .to_string();
    let mut last = sent;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        last = call(opened, "get_test_event", json!({"correlation_id": id})).await?;
        let has_results = last
            .get("results")
            .or_else(|| last.get("Results"))
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty());
        if has_results {
            break;
        }
    }
    Ok(last)
}
