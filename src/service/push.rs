//! `POST /webhooks/dataverse`: CRM changes pushed by Dataverse, so that a CRM
//! edit reaches Partner Center at once instead of at the next poll.
//!
//! Dataverse posts a serialized `RemoteExecutionContext` to a service endpoint
//! registered on a table's Create and Update messages (post-operation). With the
//! WebhookKey auth type it adds the key as `?code=KEY`; an `x-cosync-key` header
//! (HttpHeader auth type) is taken too. Answers:
//! - 404 when `server.dataverse_webhook_key` is not set (the endpoint is off);
//! - 401 when the key is missing or wrong (compared in constant time);
//! - 415 not JSON, 400 malformed (no `MessageName`, `PrimaryEntityName` or
//!   `PrimaryEntityId`);
//! - 200 when no flow watches that table, the message is not Create/Update, or
//!   the flow's `where:` (e.g. Sync = Yes) is contradicted by the values the
//!   context carries (the `Target` and the post-image); a field the context does
//!   not carry is not held against the change — the flow reads the record and
//!   checks again;
//! - 202 once the events are stored (by the same path as polled changes: linked
//!   records take the referral's ordering key), 200 for a redelivery (the
//!   context's `OperationId`, else `CorrelationId`, tells deliveries apart).
//!
//! A pushed change is also seen by the next poll under its eTag: that second
//! event runs the flow again and writes nothing (echo suppression). Set a long
//! `server.poll_interval` when every watched table pushes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::Shared;
use super::dispatch::{self, Watch};
use super::receiver::{digest, not_json, refuse};
use crate::spec::connector::ConnectorKind;
use crate::spec::flow::ChangeKind;

/// What a Dataverse webhook says changed.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedChange {
    /// `MessageName`: `Create`, `Update`, ...
    pub message: String,
    /// `PrimaryEntityName` (the table's logical name).
    pub entity: String,
    /// `PrimaryEntityId`.
    pub id: String,
    /// What tells this delivery from another change of the record.
    pub operation: String,
    /// Column values the context carries (`Target`, then the post-image).
    pub values: Map<String, Value>,
}

/// `[{"key": k, "value": v}, ...]` (the data-contract form of a dictionary).
fn pairs(v: Option<&Value>) -> impl Iterator<Item = (&str, &Value)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get("key")?.as_str()?, p.get("value")?)))
}

/// A column value as flows compare it: option sets and money by `Value`,
/// references by `Id`.
fn plain(v: &Value) -> Value {
    match v {
        Value::Object(o) => o
            .get("Value")
            .or_else(|| o.get("Id"))
            .cloned()
            .unwrap_or(Value::Null),
        other => other.clone(),
    }
}

/// Reads a `RemoteExecutionContext`.
pub fn parse_context(body: &[u8]) -> Result<PushedChange, String> {
    let ctx: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let text = |k: &str| ctx.get(k).and_then(Value::as_str).map(str::to_string);
    let message = text("MessageName").ok_or("`MessageName` is missing or not a string")?;
    let entity =
        text("PrimaryEntityName").ok_or("`PrimaryEntityName` is missing or not a string")?;
    let id = text("PrimaryEntityId").ok_or("`PrimaryEntityId` is missing or not a string")?;
    if id.is_empty() || entity.is_empty() {
        return Err("`PrimaryEntityName` and `PrimaryEntityId` must not be empty".into());
    }
    let mut values = Map::new();
    let images = pairs(ctx.get("PostEntityImages")).map(|(_, image)| image);
    let target = pairs(ctx.get("InputParameters"))
        .filter(|(k, _)| *k == "Target")
        .map(|(_, t)| t);
    for record in target.chain(images) {
        for (k, v) in pairs(record.get("Attributes")) {
            values.entry(k.to_string()).or_insert_with(|| plain(v));
        }
    }
    let operation = text("OperationId")
        .or_else(|| text("CorrelationId"))
        .unwrap_or_else(|| digest(body));
    Ok(PushedChange {
        message,
        entity,
        id,
        operation,
        values,
    })
}

/// True unless a value the change carries contradicts the watch's `where:`.
fn may_match(change: &PushedChange, w: &Watch) -> bool {
    w.where_fields.iter().all(|(field, wanted)| {
        change
            .values
            .get(field)
            .is_none_or(|got| super::tracking::value_matches(got, wanted))
    })
}

/// The handler.
pub(crate) async fn dataverse(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.metrics.received();
    let Some(key) = shared.config.dataverse_key.as_ref() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "Dataverse webhooks are off: set server.dataverse_webhook_key",
        );
    };
    let given = params
        .get("code")
        .map(String::as_str)
        .or_else(|| headers.get("x-cosync-key").and_then(|v| v.to_str().ok()));
    let valid = given.is_some_and(|g| {
        aws_lc_rs::constant_time::verify_slices_are_equal(g.as_bytes(), key.expose().as_bytes())
            .is_ok()
    });
    if !valid {
        shared.metrics.refused();
        return refuse(StatusCode::UNAUTHORIZED, "missing or wrong webhook key");
    }
    if let Some(refused) = not_json(&shared, &headers) {
        return refused;
    }
    let change = match parse_context(&body) {
        Ok(c) => c,
        Err(reason) => {
            shared.metrics.refused();
            return refuse(StatusCode::BAD_REQUEST, reason);
        }
    };
    let ignored = |reason: String| {
        tracing::info!(entity = %change.entity, record = %change.id, "Dataverse webhook ignored: {reason}");
        (
            StatusCode::OK,
            axum::Json(json!({"stored": [], "reason": reason})),
        )
            .into_response()
    };
    let kind = match change.message.as_str() {
        "Create" => ChangeKind::Created,
        "Update" => ChangeKind::Updated,
        other => return ignored(format!("`{other}` messages are not synced")),
    };
    let project = &shared.config.project;
    let watches: Vec<Watch> = dispatch::watches(project)
        .into_iter()
        .filter(|w| {
            w.entity == change.entity
                && project
                    .connector_id(&w.connector)
                    .is_some_and(|c| project.connector(c).spec.kind == ConnectorKind::Dataverse)
        })
        .collect();
    if watches.is_empty() {
        return ignored(format!("no enabled flow watches `{}`", change.entity));
    }
    let version = format!("push:{}", change.operation);
    let mut stored = 0;
    let mut candidates = 0;
    for w in watches.iter().filter(|w| may_match(&change, w)) {
        candidates += 1;
        if let Some(c) = project.connector_id(&w.connector) {
            // The pushed version is not an eTag: the mirrored copy cannot be trusted.
            shared.mirror.evict(c, &change.entity, &change.id);
        }
        let events = dispatch::crm_events(w, &change.id, &version, &[kind]);
        match super::poller::store_events(&shared, w, events, None).await {
            Ok(n) => stored += n,
            Err(e) => {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the event could not be stored: {e}"),
                );
            }
        }
    }
    if candidates == 0 {
        return ignored("the record does not match the flows' `where:`".into());
    }
    if stored == 0 {
        return (
            StatusCode::OK,
            axum::Json(json!({"stored": 0, "duplicate": true})),
        )
            .into_response();
    }
    shared.wake_workers(stored);
    tracing::info!(entity = %change.entity, record = %change.id, stored, "Dataverse webhook accepted");
    (StatusCode::ACCEPTED, axum::Json(json!({"stored": stored}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(message: &str, attrs: Value) -> Vec<u8> {
        json!({
            "MessageName": message,
            "PrimaryEntityName": "opportunity",
            "PrimaryEntityId": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "OperationId": "op-1",
            "CorrelationId": "corr-1",
            "InputParameters": [{"key": "Target", "value": {"LogicalName": "opportunity", "Id": "0f8fad5b-d9cb-469f-a165-70867728950e", "Attributes": attrs}}],
            "PostEntityImages": [{"key": "post", "value": {"Attributes": [
                {"key": "cosell_syncwithpartnercenter", "value": false},
                {"key": "statecode", "value": {"__type": "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts", "Value": 0}}
            ]}}],
            "Stage": 40,
            "Mode": 1
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn contexts_are_read_with_the_target_before_the_post_image() {
        let body = context(
            "Update",
            json!([{"key": "cosell_syncwithpartnercenter", "value": true}, {"key": "estimatedvalue", "value": {"Value": 1200.5}}]),
        );
        let c = parse_context(&body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.message, "Update");
        assert_eq!(c.entity, "opportunity");
        assert_eq!(c.operation, "op-1");
        assert_eq!(
            c.values["cosell_syncwithpartnercenter"], true,
            "the Target wins"
        );
        assert_eq!(c.values["estimatedvalue"], 1200.5);
        assert_eq!(c.values["statecode"], 0);
    }

    #[test]
    fn malformed_contexts_say_what_is_missing() {
        assert!(parse_context(b"{").is_err());
        let no_id = br#"{"MessageName":"Update","PrimaryEntityName":"opportunity"}"#;
        assert!(
            parse_context(no_id)
                .err()
                .is_some_and(|e| e.contains("PrimaryEntityId"))
        );
        assert!(parse_context(br#"[]"#).is_err());
    }

    #[test]
    fn only_carried_values_can_contradict_the_watch() {
        let w = Watch {
            connector: "dynamics365".into(),
            entity: "opportunity".into(),
            where_fields: vec![("cosell_syncwithpartnercenter".into(), json!(true))],
            flows: Vec::new(),
            tracked: false,
        };
        let on = parse_context(&context(
            "Update",
            json!([{"key": "cosell_syncwithpartnercenter", "value": true}]),
        ));
        assert!(on.is_ok_and(|c| may_match(&c, &w)));
        // Not in the Target: the post-image says No.
        let off = parse_context(&context("Update", json!([])));
        assert!(off.is_ok_and(|c| !may_match(&c, &w)));
        let mut silent =
            parse_context(&context("Update", json!([]))).unwrap_or_else(|e| panic!("{e}"));
        silent.values.clear();
        assert!(
            may_match(&silent, &w),
            "a value not carried is not held against it"
        );
    }
}
