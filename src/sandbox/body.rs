//! Request helpers shared by the services: JSON bodies with content-type checks, the
//! `Prefer` header, and raw query parameters (OData option names start with `$`).

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use serde_json::Value;

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BodyError {
    /// The content type is missing or not one the endpoint accepts.
    UnsupportedMediaType(String),
    /// The body is not JSON (or empty).
    Malformed(String),
}

/// The media type of the request (lowercase, without parameters).
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Parses a JSON body whose content type is one of `accepted`.
pub(crate) fn json(
    headers: &HeaderMap,
    body: &Bytes,
    accepted: &[&str],
) -> Result<Value, BodyError> {
    let media = media_type(headers);
    if !accepted.contains(&media.as_str()) {
        let shown = if media.is_empty() {
            "(none)"
        } else {
            media.as_str()
        };
        return Err(BodyError::UnsupportedMediaType(shown.to_owned()));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Malformed(
            "The request body is empty.".to_owned(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| BodyError::Malformed(e.to_string()))
}

/// The `Prefer` preferences a request names.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Prefer {
    /// `return=representation`.
    pub(crate) representation: bool,
    /// `odata.maxpagesize=N`.
    pub(crate) max_page_size: Option<usize>,
    /// `odata.track-changes`.
    pub(crate) track_changes: bool,
    /// `odata.include-annotations="…"`.
    pub(crate) annotations: Option<String>,
}

impl Prefer {
    /// Reads every `Prefer` header (comma-separated preferences).
    pub(crate) fn parse(headers: &HeaderMap) -> Prefer {
        let mut prefer = Prefer::default();
        for value in headers.get_all("prefer") {
            let Ok(value) = value.to_str() else { continue };
            for item in value.split(',') {
                let item = item.trim();
                let (name, arg) = item.split_once('=').unwrap_or((item, ""));
                let arg = arg.trim().trim_matches('"');
                match name.trim().to_ascii_lowercase().as_str() {
                    "return" => prefer.representation = arg == "representation",
                    "odata.maxpagesize" => prefer.max_page_size = arg.parse().ok(),
                    "odata.track-changes" => prefer.track_changes = true,
                    "odata.include-annotations" => prefer.annotations = Some(arg.to_owned()),
                    _ => {}
                }
            }
        }
        prefer
    }
}

/// Decoded query parameters in order.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// The value of one query parameter.
pub(crate) fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Re-encodes query parameters the way OData links show them: option names as they
/// are (`$skiptoken`), values percent-encoded (spaces as `%20`).
pub(crate) fn encode_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~$'(),:/@!*".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A header's text value.
pub(crate) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_reads_several_preferences() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "prefer",
            axum::http::HeaderValue::from_static(
                "odata.track-changes, odata.maxpagesize=5, odata.include-annotations=\"*\"",
            ),
        );
        headers.append(
            "prefer",
            axum::http::HeaderValue::from_static("return=representation"),
        );
        let prefer = Prefer::parse(&headers);
        assert!(prefer.track_changes && prefer.representation);
        assert_eq!(prefer.max_page_size, Some(5));
        assert_eq!(prefer.annotations.as_deref(), Some("*"));
    }
}
