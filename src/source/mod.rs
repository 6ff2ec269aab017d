//! Stage 1: source text → located values. Every node of every YAML file knows its
//! `file:line:col`, so later stages can point at exactly what is wrong.

pub mod loader;
pub mod span;
pub mod yaml;

pub use loader::{LoadOutcome, LoadedFile, Loader};
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
    }
}
