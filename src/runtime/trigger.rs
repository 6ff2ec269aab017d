//! Turns an incoming event into the `trigger.*` variables of a flow.

use serde_json::{Value, json};

use crate::spec::flow::TriggerSpec;

/// The referral id in a webhook's `ResourceUri`: its last path segment.
pub fn resource_id(uri: &str) -> Option<String> {
    let path = uri.split(['?', '#']).next().unwrap_or(uri);
    let id = path.trim_end_matches('/').rsplit('/').next()?;
    (!id.is_empty() && !id.contains(':')).then(|| id.to_string())
}

/// The trigger variables for `event` under `trigger`. Partner Center webhook
/// payloads (`EventName`, `ResourceUri`, ...) become `event`, `resource_id`,
/// `resource_uri`, `changed_at`; a bare CRM record becomes `record`; a manual
/// trigger's event becomes `inputs`. Events already in trigger form pass through.
pub fn trigger_from_event(
    trigger: Option<&TriggerSpec>,
    event: Value,
    key_field: Option<&str>,
) -> Result<Value, String> {
    match trigger {
        Some(TriggerSpec::PartnerCenter(_)) => {
            let Some(name) = event.get("EventName").and_then(Value::as_str) else {
                return Ok(event);
            };
            let uri = event
                .get("ResourceUri")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let id = resource_id(uri)
                .ok_or_else(|| format!("the event's ResourceUri `{uri}` names no resource"))?;
            Ok(json!({
                "event": name,
                "resource_id": id,
                "resource_uri": uri,
                "resource_name": event.get("ResourceName").cloned().unwrap_or(Value::Null),
                "changed_at": event.get("ResourceChangeUtcDate").cloned().unwrap_or(Value::Null),
                "audit_uri": event.get("AuditUri").cloned().unwrap_or(Value::Null),
            }))
        }
        Some(TriggerSpec::CrmChange(_)) => {
            if event.get("record").is_some() {
                return Ok(event);
            }
            let id = key_field
                .and_then(|k| event.get(k))
                .cloned()
                .unwrap_or(Value::Null);
            Ok(json!({"record": event, "record_id": id, "change": "updated"}))
        }
        Some(TriggerSpec::Manual(_)) => {
            if event.get("inputs").is_some() {
                return Ok(event);
            }
            Ok(json!({"inputs": event}))
        }
        Some(TriggerSpec::Schedule(_)) | None => Ok(event),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_payloads_become_trigger_variables() {
        let t = TriggerSpec::PartnerCenter(crate::spec::flow::PartnerCenterTrigger {
            events: vec![],
            connector: None,
        });
        let event = json!({"EventName": "referral-updated", "ResourceUri": "https://api.partnercenter.microsoft.com/engagements/v1/referrals/abc-123", "ResourceName": "referral", "AuditUri": null, "ResourceChangeUtcDate": "2018-02-17T00:05:39.5485487+00:00"});
        let v = trigger_from_event(Some(&t), event, None).unwrap_or_default();
        assert_eq!(v["resource_id"], "abc-123");
        assert_eq!(v["event"], "referral-updated");
        assert_eq!(resource_id("https://x/y/z/"), Some("z".into()));
        assert_eq!(resource_id("https://"), None);
    }
}
