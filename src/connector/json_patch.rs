//! The JSON-Patch (RFC 6902) document of a Partner Center referral update, built
//! from the interpreter's change keys: a key starting with `/` is a JSON pointer
//! (`/details/dealValue`), a plain key `x` is `/x`. Partner Center supports only
//! `replace` and `add`: a path that exists is replaced; a missing one is added at
//! its first missing member, with the rest of the path built as nested objects
//! (several changes under one missing member become one `add`).

use serde_json::{Map, Value, json};

use crate::expr::path::set_pointer;
use crate::source::{escape_pointer, unescape_pointer};

/// The pointer a change key writes.
pub(crate) fn pointer_of(key: &str) -> String {
    if key.starts_with('/') {
        key.to_string()
    } else {
        format!("/{}", escape_pointer(key))
    }
}

fn segments(pointer: &str) -> Vec<String> {
    pointer.split('/').skip(1).map(unescape_pointer).collect()
}

fn pointer_from(segments: &[String]) -> String {
    segments
        .iter()
        .map(|s| format!("/{}", escape_pointer(s)))
        .collect()
}

enum Step<'a> {
    /// The node exists.
    Exists(&'a Value),
    /// The node is missing; its parent exists and can hold it.
    Missing,
    /// A scalar or null where a container is needed: replace it whole.
    Blocked,
}

fn child<'a>(node: &'a Value, segment: &str) -> Step<'a> {
    match node {
        Value::Object(map) => map.get(segment).map_or(Step::Missing, Step::Exists),
        Value::Array(_) if segment == "-" => Step::Missing,
        Value::Array(items) => match segment.parse::<usize>() {
            Ok(i) if i < items.len() => Step::Exists(&items[i]),
            _ => Step::Missing,
        },
        _ => Step::Blocked,
    }
}

/// Where one change lands: the operation and how many segments its path keeps
/// (the others are built inside the value).
fn locate(current: &Value, segs: &[String]) -> (&'static str, usize) {
    let mut node = current;
    for (i, seg) in segs.iter().enumerate() {
        match child(node, seg) {
            Step::Exists(next) => node = next,
            Step::Missing => return ("add", i + 1),
            Step::Blocked => return ("replace", i),
        }
    }
    ("replace", segs.len())
}

/// The patch document that writes `changes` over `current`.
pub(crate) fn build(current: &Value, changes: &Map<String, Value>) -> Vec<Value> {
    let mut ops: Vec<(String, String, Value)> = Vec::new();
    for (key, value) in changes {
        let segs = segments(&pointer_of(key));
        if segs.is_empty() {
            continue;
        }
        let (op, at) = locate(current, &segs);
        let at = at.max(1);
        let target = pointer_from(&segs[..at]);
        let rest = pointer_from(&segs[at..]);
        if let Some(existing) = ops
            .iter_mut()
            .find(|(o, p, _)| *o == op && *p == target && !rest.is_empty())
        {
            set_pointer(&mut existing.2, &rest, value.clone());
            continue;
        }
        let mut v = if rest.is_empty() {
            value.clone()
        } else {
            json!({})
        };
        if !rest.is_empty() {
            set_pointer(&mut v, &rest, value.clone());
        }
        ops.push((op.to_string(), target, v));
    }
    ops.into_iter()
        .map(|(op, path, value)| json!({"op": op, "path": path, "value": value}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn replace_existing_add_missing() {
        let current = json!({"status": "New", "details": {"dealValue": 5}, "team": [{"email": "a"}], "consent": null});
        let ops = build(
            &current,
            &changes(json!({
                "status": "Active",
                "/details/dealValue": 10,
                "/details/currency": "EUR",
                "/customerProfile/address/country": "DE",
                "/customerProfile/name": "Contoso",
                "/team/-": {"email": "b"},
                "/consent/consentToContact": true,
                "externalReferenceId": "x~y/z",
            })),
        );
        assert_eq!(
            Value::Array(ops),
            json!([
                {"op": "replace", "path": "/status", "value": "Active"},
                {"op": "replace", "path": "/details/dealValue", "value": 10},
                {"op": "add", "path": "/details/currency", "value": "EUR"},
                {"op": "add", "path": "/customerProfile", "value": {"address": {"country": "DE"}, "name": "Contoso"}},
                {"op": "add", "path": "/team/-", "value": {"email": "b"}},
                {"op": "replace", "path": "/consent", "value": {"consentToContact": true}},
                {"op": "add", "path": "/externalReferenceId", "value": "x~y/z"},
            ])
        );
        assert_eq!(pointer_of("a/b"), "/a~1b");
    }
}
