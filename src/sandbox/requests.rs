//! The request log: every request a service listener answered (admin calls are not
//! logged), with a body summary; `GET /_sandbox/requests` and `GET /_sandbox/writes`.

use std::collections::VecDeque;

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
    pub(crate) body: Option<Value>,
    /// The error body of a failed request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<Value>,
    /// True for a successful POST, PUT, PATCH or DELETE on a data API.
    pub(crate) write: bool,
}

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
    if content_type.starts_with("application/x-www-form-urlencoded") {
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
}
