//! Partner Center's webhook registration API (`/webhooks/v1/registration` on its
//! own host): register (with `replace: true`, overwrite an existing registration
//! by PUT, as Microsoft's registration flow does), view, update, list the event
//! names, send a test event and read its delivery.

use reqwest::Method;
use serde_json::{Value, json};

use super::http::{Call, Connection, join, segment};
use super::support::{input_flag, input_text, invalid, required_text};
use crate::runtime::connectors::{ConnectorError, ErrorKind};

/// The operations served here.
pub(crate) const OPERATIONS: &[&str] = &[
    "register_webhook",
    "get_webhook_registration",
    "update_webhook_registration",
    "list_webhook_events",
    "send_test_event",
    "get_test_event",
];

const REGISTRATION: &str = "/webhooks/v1/registration";

/// The registration body: `{"WebhookUrl", "WebhookEvents"}` from inputs `url` and
/// `events` (a list, or comma-separated text).
fn registration(inputs: &Value, operation: &str) -> Result<Value, ConnectorError> {
    let url = required_text(inputs, &["url", "WebhookUrl", "webhook_url"], operation)?;
    let events: Vec<Value> = match inputs.get("events").or_else(|| inputs.get("WebhookEvents")) {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_string()))
            .collect(),
        _ => return Err(invalid(format!("{operation} needs the input `events`"))),
    };
    Ok(json!({"WebhookUrl": url, "WebhookEvents": events}))
}

async fn send(
    conn: &Connection,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ConnectorError> {
    let mut call = Call::new(method, join(&conn.base()?, path)?);
    if let Some(b) = body {
        call = call.json(b);
    }
    Ok(conn.send(call).await?.body)
}

/// True when a registration exists (a 404 means none).
async fn registered(conn: &Connection) -> Result<bool, ConnectorError> {
    match send(conn, Method::GET, REGISTRATION, None).await {
        Ok(v) => Ok(v.get("WebhookUrl").is_some_and(|u| !u.is_null())),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs webhook operation `operation`.
pub(crate) async fn call(
    conn: &Connection,
    operation: &str,
    inputs: &Value,
) -> Result<Value, ConnectorError> {
    match operation {
        "register_webhook" => {
            let body = registration(inputs, operation)?;
            let method = if input_flag(inputs, "replace") && registered(conn).await? {
                Method::PUT
            } else {
                Method::POST
            };
            send(conn, method, REGISTRATION, Some(body)).await
        }
        "update_webhook_registration" => {
            let body = registration(inputs, operation)?;
            send(conn, Method::PUT, REGISTRATION, Some(body)).await
        }
        "get_webhook_registration" => send(conn, Method::GET, REGISTRATION, None).await,
        "list_webhook_events" => {
            send(conn, Method::GET, &format!("{REGISTRATION}/events"), None).await
        }
        "send_test_event" => {
            send(
                conn,
                Method::POST,
                &format!("{REGISTRATION}/validationEvents"),
                None,
            )
            .await
        }
        "get_test_event" => {
            let id = input_text(inputs, &["correlation_id", "correlationId", "id"])
                .ok_or_else(|| invalid("get_test_event needs the input `correlation_id`"))?;
            send(
                conn,
                Method::GET,
                &format!("{REGISTRATION}/validationEvents/{}", segment(&id)),
                None,
            )
            .await
        }
        other => Err(invalid(format!("no webhook operation `{other}`"))),
    }
}
