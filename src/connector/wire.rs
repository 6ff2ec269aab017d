//! What the services say when something fails: each dialect's error body turned
//! into one readable line, and HTTP statuses (plus Salesforce's error codes) turned
//! into the [`ErrorKind`]s the engine acts on.

use serde_json::Value;

use crate::runtime::connectors::ErrorKind;

/// Longest service message kept in an error.
const MAX_MESSAGE: usize = 1024;

/// The wire conventions of a service family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Partner Center (referrals and webhook registration).
    PartnerCenter,
    /// Dataverse Web API (OData v4).
    Dataverse,
    /// Salesforce REST.
    Salesforce,
    /// A declarative `http` API.
    Generic,
}

impl Dialect {
    /// Headers carrying the correlation id of a request: `(per operation, per attempt)`.
    pub(crate) fn correlation_headers(self) -> (Option<&'static str>, Option<&'static str>) {
        match self {
            Dialect::PartnerCenter => (Some("MS-CorrelationId"), Some("MS-RequestId")),
            Dialect::Dataverse => (Some("client-request-id"), None),
            Dialect::Salesforce => (None, None),
            Dialect::Generic => (Some("X-Correlation-Id"), None),
        }
    }

    /// Headers every request of the dialect carries.
    pub(crate) fn standard_headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Dialect::Dataverse => &[
                ("OData-MaxVersion", "4.0"),
                ("OData-Version", "4.0"),
                ("If-None-Match", "null"),
            ],
            _ => &[],
        }
    }

    /// The kind of failure an error answer means.
    pub(crate) fn classify(self, status: u16, body: &Value) -> ErrorKind {
        match status {
            401 => ErrorKind::Unauthorized,
            403 if self == Dialect::Salesforce
                && has_error_code(body, "REQUEST_LIMIT_EXCEEDED") =>
            {
                ErrorKind::Throttled
            }
            403 => ErrorKind::Unauthorized,
            404 | 410 => ErrorKind::NotFound,
            409 | 412 => ErrorKind::Conflict,
            429 => ErrorKind::Throttled,
            500..=599 => ErrorKind::Transient,
            _ => ErrorKind::Invalid,
        }
    }
}

/// True for answers worth another attempt after a delay.
pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

fn has_error_code(body: &Value, code: &str) -> bool {
    match body {
        Value::Array(items) => items
            .iter()
            .any(|i| i.get("errorCode").and_then(Value::as_str) == Some(code)),
        Value::Object(_) => body.get("errorCode").and_then(Value::as_str) == Some(code),
        _ => false,
    }
}

/// One line describing an error body, in any of the known formats: OData
/// `{"error":{"code","message"}}`, Partner Center's older `{"code","description"}`,
/// Salesforce arrays `[{"message","errorCode","fields"}]`, OAuth
/// `{"error","error_description"}`, or `message`/`detail`/`title` fields.
pub(crate) fn error_message(body: &Value) -> Option<String> {
    let text = match body {
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(salesforce_item).collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        Value::Object(map) => match map.get("error") {
            Some(Value::Object(e)) => {
                let code = e.get("code").and_then(Value::as_str).unwrap_or_default();
                let message = e
                    .get("message")
                    .or_else(|| e.get("Message"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let inner = e
                    .get("innerError")
                    .or_else(|| e.get("innererror"))
                    .and_then(|i| i.get("message"))
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty() && *m != message);
                let mut line = join_code(code, message);
                if let Some(inner) = inner {
                    line.push_str(&format!(" ({inner})"));
                }
                (!line.is_empty()).then_some(line)
            }
            Some(Value::String(code)) => {
                let description = map
                    .get("error_description")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Some(join_code(code, description))
            }
            _ => {
                let code = map
                    .get("code")
                    .or_else(|| map.get("errorCode"))
                    .map(scalar)
                    .unwrap_or_default();
                ["message", "description", "detail", "title"]
                    .iter()
                    .find_map(|k| map.get(*k).and_then(Value::as_str))
                    .map(|m| join_code(&code, m))
            }
        },
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }?;
    Some(truncate(&text))
}

fn salesforce_item(item: &Value) -> Option<String> {
    let message = item.get("message").and_then(Value::as_str)?;
    let code = item
        .get("errorCode")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut line = join_code(code, message);
    if let Some(fields) = item.get("fields").and_then(Value::as_array)
        && !fields.is_empty()
    {
        let names: Vec<String> = fields.iter().map(scalar).collect();
        line.push_str(&format!(" (fields: {})", names.join(", ")));
    }
    Some(line)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn join_code(code: &str, message: &str) -> String {
    match (code.is_empty(), message.is_empty()) {
        (false, false) => format!("{code}: {message}"),
        (false, true) => code.to_string(),
        _ => message.to_string(),
    }
}

/// `text` cut to the longest kept message, on a character boundary.
pub(crate) fn truncate(text: &str) -> String {
    if text.len() <= MAX_MESSAGE {
        return text.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats() {
        let pc = json!({"error": {"code": "preconditionFailed", "message": "eTag mismatch", "target": "referral"}});
        assert_eq!(
            error_message(&pc).as_deref(),
            Some("preconditionFailed: eTag mismatch")
        );
        let dv = json!({"error": {"code": "", "message": "The version of the existing record doesn't match"}});
        assert_eq!(
            error_message(&dv).as_deref(),
            Some("The version of the existing record doesn't match")
        );
        let sf = json!([
            {"message": "Required fields are missing: [StageName]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["StageName"]},
            {"message": "bad", "errorCode": "INVALID_FIELD"}
        ]);
        assert_eq!(
            error_message(&sf).as_deref(),
            Some(
                "REQUIRED_FIELD_MISSING: Required fields are missing: [StageName] (fields: StageName); INVALID_FIELD: bad"
            )
        );
        let oauth = json!({"error": "invalid_grant", "error_description": "expired"});
        assert_eq!(
            error_message(&oauth).as_deref(),
            Some("invalid_grant: expired")
        );
        let old = json!({"code": 600, "description": "nope"});
        assert_eq!(error_message(&old).as_deref(), Some("600: nope"));
        assert_eq!(error_message(&json!(null)), None);
    }

    #[test]
    fn kinds() {
        let limit = json!([{"message": "limit", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]);
        assert_eq!(
            Dialect::Salesforce.classify(403, &limit),
            ErrorKind::Throttled
        );
        assert_eq!(
            Dialect::Dataverse.classify(403, &limit),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            Dialect::Dataverse.classify(412, &json!(null)),
            ErrorKind::Conflict
        );
        assert_eq!(
            Dialect::Generic.classify(400, &json!(null)),
            ErrorKind::Invalid
        );
        assert_eq!(
            Dialect::Generic.classify(503, &json!(null)),
            ErrorKind::Transient
        );
        assert!(retryable_status(429) && retryable_status(503) && !retryable_status(400));
        assert!(!retryable_status(412) && !retryable_status(500));
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "é".repeat(2000);
        assert!(truncate(&long).len() <= MAX_MESSAGE + 3);
    }
}
