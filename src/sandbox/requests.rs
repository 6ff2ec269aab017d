//! The request log: every request a service listener answered (admin calls are not
//! logged), with a body summary; `GET /_sandbox/requests` and `GET /_sandbox/writes`.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::Service;

/// One answered request.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LogEntry {
    /// Increasing sequence number (use it as `since`).
    pub(crate) seq: u64,
    /// When the request arrived (RFC 3339).
    pub(crate) time: String,
    /// Which listener answered.
    pub(crate) service: Service,
    /// HTTP method.
    pub(crate) method: String,
    /// Path and query.
    pub(crate) path: String,
    /// Answered status (0 = connection dropped by a fault).
    pub(crate) status: u16,
    /// Time to answer.
    pub(crate) duration_ms: u64,
    /// The injected fault, if one applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fault: Option<String>,
    /// The request body: JSON as JSON, forms with secrets redacted, other text cut short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) body: Option<LoggedBody>,
    /// The error body of a failed request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<Value>,
    /// True for a successful POST, PUT, PATCH or DELETE on a data API.
    pub(crate) write: bool,
}

/// A request body in the log. JSON bodies are kept as received and parsed only when
/// the log is read (most entries never are, and the handler parses the body anyway);
/// forms (secrets redacted at once) and bodies too large to show whole keep only
/// their summary.
#[derive(Debug, Clone)]
pub(crate) enum LoggedBody {
    /// Bytes no larger than the JSON limit, with their content type.
    Raw {
        content_type: String,
        bytes: Arc<[u8]>,
    },
    /// Already summarized.
    Summary(Value),
}

impl LoggedBody {
    /// Logs a non-empty body (a copy, so the log never holds the connection's read
    /// buffer the body may share).
    pub(crate) fn new(content_type: &str, body: &[u8], max_json: usize) -> Option<LoggedBody> {
        if body.is_empty() {
            return None;
        }
        if body.len() > max_json || content_type.starts_with(FORM) {
            return summarize(content_type, body, max_json).map(LoggedBody::Summary);
        }
        Some(LoggedBody::Raw {
            content_type: content_type.to_owned(),
            bytes: Arc::from(body),
        })
    }

    /// What the log shows: see [`summarize`].
    pub(crate) fn summary(&self) -> Option<Value> {
        match self {
            // Within the JSON limit by construction, so any limit at least as large
            // gives the same summary.
            LoggedBody::Raw {
                content_type,
                bytes,
            } => summarize(content_type, bytes, bytes.len()),
            LoggedBody::Summary(value) => Some(value.clone()),
        }
    }
}

impl Serialize for LoggedBody {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            LoggedBody::Summary(value) => value.serialize(serializer),
            raw => raw.summary().serialize(serializer),
        }
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

/// Filters of `GET /_sandbox/requests` and `GET /_sandbox/writes`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogFilter {
    /// Only this service.
    pub(crate) service: Option<Service>,
    /// Only this method.
    pub(crate) method: Option<String>,
    /// Only paths starting with this.
    pub(crate) path_prefix: Option<String>,
    /// Only this status.
    pub(crate) status: Option<u16>,
    /// Only entries with a greater sequence number.
    pub(crate) since: Option<u64>,
    /// At most this many (the newest).
    pub(crate) limit: Option<usize>,
}

/// A bounded log, oldest entries dropped first.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestLog {
    entries: VecDeque<LogEntry>,
    next: u64,
}

impl RequestLog {
    /// Appends an entry, assigning its sequence number.
    pub(crate) fn push(&mut self, mut entry: LogEntry, capacity: usize) {
        self.next += 1;
        entry.seq = self.next;
        self.entries.push_back(entry);
        while self.entries.len() > capacity.max(1) {
            self.entries.pop_front();
        }
    }

    /// Removes every entry (sequence numbers keep increasing).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Entries matching the filter, oldest first.
    pub(crate) fn select(&self, filter: &LogFilter, writes_only: bool) -> Vec<LogEntry> {
        let matching: Vec<&LogEntry> = self
            .entries
            .iter()
            .filter(|e| !writes_only || e.write)
            .filter(|e| filter.service.is_none_or(|s| s == e.service))
            .filter(|e| {
                filter
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(&e.method))
            })
            .filter(|e| {
                filter
                    .path_prefix
                    .as_deref()
                    .is_none_or(|p| e.path.starts_with(p))
            })
            .filter(|e| filter.status.is_none_or(|s| s == e.status))
            .filter(|e| filter.since.is_none_or(|s| e.seq > s))
            .collect();
        let skip = filter
            .limit
            .map_or(0, |limit| matching.len().saturating_sub(limit));
        matching.into_iter().skip(skip).cloned().collect()
    }
}

/// Form fields never written to the log.
const SECRET_FIELDS: [&str; 5] = [
    "client_secret",
    "refresh_token",
    "password",
    "assertion",
    "code",
];

/// A loggable summary of a request body.
pub(crate) fn summarize(content_type: &str, body: &[u8], max_json: usize) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    if content_type.starts_with(FORM) {
        let fields: serde_json::Map<String, Value> = url::form_urlencoded::parse(body)
            .map(|(k, v)| {
                let value = if SECRET_FIELDS.contains(&k.as_ref()) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), Value::String(value))
            })
            .collect();
        return Some(Value::Object(fields));
    }
    if body.len() <= max_json
        && let Ok(value) = serde_json::from_slice::<Value>(body)
    {
        return Some(value);
    }
    let text = String::from_utf8_lossy(body);
    let mut short: String = text.chars().take(500).collect();
    if short.len() < text.len() {
        short.push_str(&format!("… ({} bytes)", body.len()));
    }
    Some(Value::String(short))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_from_forms() {
        let summary = summarize(
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials&client_id=a&client_secret=s3cret",
            1000,
        );
        let text = summary.map(|v| v.to_string()).unwrap_or_default();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("client_credentials"), "{text}");
    }

    #[test]
    fn logged_bodies_read_as_their_summary() {
        assert!(LoggedBody::new("application/json", b"", 100).is_none());
        let body = LoggedBody::new("application/json", br#"{"a":1}"#, 100);
        let shown = serde_json::to_value(&body).unwrap_or_default();
        assert_eq!(shown, serde_json::json!({"a": 1}));
        let form = LoggedBody::new(
            "application/x-www-form-urlencoded",
            b"client_id=a&client_secret=s3cret",
            100,
        );
        assert!(matches!(form, Some(LoggedBody::Summary(_))));
        let shown = serde_json::to_string(&form).unwrap_or_default();
        assert!(!shown.contains("s3cret"), "{shown}");
        // Too large to show whole: only the cut summary is kept.
        let large = format!("{{\"a\":\"{}\"}}", "x".repeat(600));
        let body = LoggedBody::new("application/json", large.as_bytes(), 100);
        assert!(matches!(body, Some(LoggedBody::Summary(Value::String(_)))));
        let shown = serde_json::to_value(&body).unwrap_or_default();
        assert_eq!(
            shown,
            summarize("application/json", large.as_bytes(), 100).unwrap_or_default()
        );
    }

    #[test]
    fn the_log_keeps_the_newest_entries() {
        let mut log = RequestLog::default();
        for _ in 0..10 {
            log.push(
                LogEntry {
                    seq: 0,
                    time: String::new(),
                    service: Service::Dataverse,
                    method: "GET".into(),
                    path: "/".into(),
                    status: 200,
                    duration_ms: 0,
                    fault: None,
                    body: None,
                    error: None,
                    write: false,
                },
                3,
            );
        }
        let seqs: Vec<u64> = log
            .select(&LogFilter::default(), false)
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, [8, 9, 10]);
    }
}
