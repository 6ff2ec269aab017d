//! Stage 1: source text → located values. Every node of every YAML file knows its
//! `file:line:col`, so later stages can point at exactly what is wrong.

pub mod loader;
pub mod span;
pub mod yaml;

pub use loader::{LoadOutcome, LoadedFile, Loader, MetadataSnapshot};
pub use span::{LineIndex, Pos, Span};
pub use yaml::{Located, parse_yaml};

/// Escapes one JSON-pointer segment (RFC 6901: `~` → `~0`, `/` → `~1`).
pub fn escape_pointer(segment: &str) -> String {
    if segment.contains(['~', '/']) {
        segment.replace('~', "~0").replace('/', "~1")
    } else {
        segment.to_string()
    }
}

/// Undoes [`escape_pointer`].
pub fn unescape_pointer(segment: &str) -> String {
    if segment.contains('~') {
        segment.replace("~1", "/").replace("~0", "~")
    } else {
        segment.to_string()
    }
}

/// `value.pointer(pointer)` without allocating: serde_json's version unescapes
/// every segment into a new string, which dominates hot mapping loops.
pub fn get_pointer<'v>(
    value: &'v serde_json::Value,
    pointer: &str,
) -> Option<&'v serde_json::Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    let mut node = value;
    for segment in pointer.strip_prefix('/')?.split('/') {
        node = match node {
            serde_json::Value::Object(map) if segment.contains('~') => {
                map.get(&unescape_pointer(segment))?
            }
            serde_json::Value::Object(map) => map.get(segment)?,
            serde_json::Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// The parent of a JSON pointer (`/a/b` → `/a`, `/a` → ``), or `None` for the root.
pub fn parent_pointer(pointer: &str) -> Option<&str> {
    pointer.rfind('/').map(|i| &pointer[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_escaping_round_trips() {
        for s in ["plain", "a/b", "~x", "~1/"] {
            assert_eq!(unescape_pointer(&escape_pointer(s)), s);
        }
        assert_eq!(escape_pointer("a/b~"), "a~1b~0");
        assert_eq!(parent_pointer("/a/b"), Some("/a"));
        assert_eq!(parent_pointer("/a"), Some(""));
        assert_eq!(parent_pointer(""), None);
        let v = serde_json::json!({"a": {"b/c": [1, {"d": 2}]}, "~x": 3});
        for p in [
            "",
            "/a",
            "/a/b~1c/1/d",
            "/a/b~1c/0",
            "/~0x",
            "/a/zz",
            "/a/b~1c/9",
            "/a/b~1c/x",
        ] {
            assert_eq!(get_pointer(&v, p), v.pointer(p), "{p}");
        }
    }
}
