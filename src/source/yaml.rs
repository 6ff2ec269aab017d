//! YAML text → [`Located`]: a `serde_json::Value` plus the span of every value and
//! every key, indexed by JSON pointer. The only place cosync parses YAML.

use std::collections::HashMap;

use saphyr::{MarkedYaml, Scalar, YamlData, YamlLoader};
use saphyr_parser::Parser;
use serde_json::{Map, Number, Value};

use super::escape_pointer;
use super::span::{LineIndex, Span};
use crate::diag::{Code, Diagnostic};

/// Most nodes that alias expansion may produce in one file (defends against
/// "billion laughs" alias bombs; real config files use a handful).
pub const ALIAS_NODE_LIMIT: usize = 10_000;

/// Deepest nesting accepted (defends the recursive walk against stack exhaustion).
pub const MAX_DEPTH: usize = 128;

/// A parsed document with positions.
#[derive(Debug, Clone, Default)]
pub struct Located {
    /// The document as JSON.
    pub value: Value,
    /// Span of each value node, by JSON pointer ("" is the root).
    pub nodes: HashMap<String, Span>,
    /// Span of the key introducing each mapping value, by the value's pointer.
    pub keys: HashMap<String, Span>,
}

impl Located {
    /// Where a diagnostic about the node at `pointer` should point: a scalar's own
    /// span; for a mapping or list, the key that introduces it (or its start). When
    /// the pointer does not exist (a missing key), the nearest existing ancestor.
    pub fn locate(&self, pointer: &str) -> Option<Span> {
        let mut p = pointer;
        loop {
            if let Some(span) = self.nodes.get(p) {
                // Containers and empty values (whose span is the `:`) point at their key.
                let at_key = self
                    .value
                    .pointer(p)
                    .is_some_and(|v| v.is_object() || v.is_array() || v.is_null());
                if at_key {
                    if let Some(key) = self.keys.get(p) {
                        return Some(*key);
                    }
                    return Some(Span::point(span.start));
                }
                return Some(*span);
            }
            p = super::parent_pointer(p)?;
        }
    }

    /// The span of the key that introduces `pointer`, falling back to [`Self::locate`].
    pub fn locate_key(&self, pointer: &str) -> Option<Span> {
        self.keys
            .get(pointer)
            .copied()
            .or_else(|| self.locate(pointer))
    }
}

/// Parses one YAML file. `Err` carries the diagnostics (without the file name):
/// syntax errors, tabs, duplicate keys, alias bombs, several documents, or none.
pub fn parse_yaml(text: &str) -> Result<Located, Vec<Diagnostic>> {
    let lines = LineIndex::new(text);
    let mut loader: YamlLoader<'_, MarkedYaml<'_>> = YamlLoader::default();
    loader.alias_limit(ALIAS_NODE_LIMIT);
    let mut parser = Parser::new_from_str(text);
    let result = parser.load(&mut loader, true);
    let error = match result {
        Err(e) => Some(e),
        Ok(()) => loader.error().cloned(),
    };
    if let Some(e) = error {
        return Err(vec![scan_error(text, &lines, &e)]);
    }
    let docs = loader.into_documents();
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        let message = if text.trim().is_empty() {
            "the file is empty"
        } else {
            "the file holds only comments"
        };
        return Err(vec![Diagnostic::error(Code::EmptyFile, message).with_help(
            "a cosync file starts with its kind key, e.g. `flow: my-flow`",
        )]);
    };
    if let Some(second) = docs.next() {
        let mut span = span_of(text, &lines, &second.span);
        // Point at the `---` that starts the second document, when there is one.
        if let Some(i) = text[..span.start.byte.min(text.len())].rfind("---") {
            let pos = lines.pos_of_byte(text, i);
            span = Span {
                start: pos,
                end: lines.pos_of_byte(text, i + 3),
            };
        }
        return Err(vec![
            Diagnostic::error(
                Code::MultipleDocuments,
                "a cosync file holds one YAML document; this is a second one",
            )
            .at(span)
            .with_help("split the documents into separate files"),
        ]);
    }
    let mut walker = Walker {
        text,
        lines: &lines,
        out: Located::default(),
        problems: Vec::new(),
    };
    let value = walker.walk(&doc, String::new(), 0);
    if !walker.problems.is_empty() {
        return Err(walker.problems);
    }
    if value.is_null() {
        return Err(vec![
            Diagnostic::error(
                Code::EmptyFile,
                "the file holds only comments or an empty document",
            )
            .with_help("a cosync file starts with its kind key, e.g. `flow: my-flow`"),
        ]);
    }
    let mut out = walker.out;
    out.value = value;
    Ok(out)
}

fn scan_error(text: &str, lines: &LineIndex, e: &saphyr::ScanError) -> Diagnostic {
    let m = e.marker();
    let pos = lines.pos(text, m.line(), m.col());
    let info = e.info();
    let (code, message, help) = if info.contains("duplicated key") {
        (
            Code::DuplicateKey,
            "this key appears twice in the same mapping".to_string(),
            Some("remove or rename one of the two keys"),
        )
    } else if info.contains("billion-laughs") {
        (
            Code::AliasLimit,
            format!("aliases expand to more than {ALIAS_NODE_LIMIT} nodes"),
            Some("cosync files do not need deeply nested aliases; write the values out"),
        )
    } else if info.contains("tab") {
        (
            Code::YamlTab,
            format!("YAML syntax error: {info}"),
            Some("YAML indentation must use spaces, not tabs"),
        )
    } else {
        (Code::YamlSyntax, format!("YAML syntax error: {info}"), None)
    };
    let mut pos = pos;
    let mut message = message;
    match code {
        // saphyr reports just after the tab; point at the tab itself.
        Code::YamlTab => {
            let line_start = text[..pos.byte.min(text.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            if let Some(tab) = text[line_start..]
                .find('\t')
                .map(|i| line_start + i)
                .filter(|t| *t <= pos.byte)
            {
                pos = lines.pos_of_byte(text, tab);
            }
        }
        // Name the key.
        Code::DuplicateKey => {
            let rest = &text[pos.byte.min(text.len())..];
            let key: String = rest
                .chars()
                .take_while(|c| *c != ':' && *c != '\n')
                .collect();
            let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
            if !key.is_empty() {
                message = format!("the key `{key}` appears twice in the same mapping");
            }
        }
        _ => {}
    }
    let d = Diagnostic::error(code, message).at(Span::point(pos));
    match help {
        Some(h) => d.with_help(h),
        None => d,
    }
}

fn span_of(text: &str, lines: &LineIndex, span: &saphyr_parser::Span) -> Span {
    Span {
        start: lines.pos(text, span.start.line(), span.start.col()),
        end: lines.pos(text, span.end.line(), span.end.col()),
    }
}

struct Walker<'a> {
    text: &'a str,
    lines: &'a LineIndex,
    out: Located,
    problems: Vec<Diagnostic>,
}

impl Walker<'_> {
    fn walk(&mut self, node: &MarkedYaml<'_>, ptr: String, depth: usize) -> Value {
        let span = span_of(self.text, self.lines, &node.span);
        if depth > MAX_DEPTH {
            if self.problems.is_empty() {
                self.problems.push(
                    Diagnostic::error(
                        Code::YamlSyntax,
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                    )
                    .at(Span::point(span.start)),
                );
            }
            return Value::Null;
        }
        let value = match &node.data {
            YamlData::Value(scalar) => scalar_to_json(scalar),
            YamlData::Representation(raw, _, _) => Value::String(raw.to_string()),
            YamlData::Sequence(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.walk(item, format!("{ptr}/{i}"), depth + 1))
                    .collect(),
            ),
            YamlData::Mapping(map) => {
                let mut obj = Map::new();
                for (k, v) in map.iter() {
                    let key_span = span_of(self.text, self.lines, &k.span);
                    let key = match &k.data {
                        YamlData::Value(s) => scalar_key(s),
                        YamlData::Representation(raw, _, _) => raw.to_string(),
                        YamlData::Tagged(_, inner) => match &inner.data {
                            YamlData::Value(s) => scalar_key(s),
                            _ => self.complex_key(key_span),
                        },
                        _ => self.complex_key(key_span),
                    };
                    let child = format!("{ptr}/{}", escape_pointer(&key));
                    self.out.keys.insert(child.clone(), key_span);
                    let value = self.walk(v, child, depth + 1);
                    obj.insert(key, value);
                }
                Value::Object(obj)
            }
            YamlData::Tagged(_, inner) => return self.walk(inner, ptr, depth),
            YamlData::Alias(_) | YamlData::BadValue => Value::Null,
        };
        self.out.nodes.insert(ptr, span);
        value
    }

    fn complex_key(&mut self, span: Span) -> String {
        self.problems.push(
            Diagnostic::error(
                Code::YamlSyntax,
                "keys must be plain text, not lists or mappings",
            )
            .at(span),
        );
        String::from("?")
    }
}

fn scalar_to_json(s: &Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number((*i).into()),
        Scalar::FloatingPoint(f) => {
            Number::from_f64(f.0).map_or_else(|| Value::String(f.0.to_string()), Value::Number)
        }
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

fn scalar_key(s: &Scalar<'_>) -> String {
    match s {
        Scalar::Null => "null".to_string(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::FloatingPoint(f) => f.0.to_string(),
        Scalar::String(s) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(text: &str, ptr: &str) -> (u32, u32) {
        let located = parse_yaml(text).unwrap_or_default();
        let span = located.locate(ptr).unwrap_or_default();
        (span.start.line, span.start.column)
    }

    #[test]
    fn indexes_values_and_keys() {
        let text = "flow: x\nsteps:\n  - get: referral\n    connector: pc\n";
        let located = parse_yaml(text).unwrap_or_default();
        assert_eq!(located.value["steps"][0]["connector"], "pc");
        assert_eq!(loc(text, "/steps/0/connector"), (4, 16));
        assert_eq!(located.keys["/steps/0/connector"].start.column, 5);
        // a mapping is located at the key that introduces it
        assert_eq!(loc(text, "/steps"), (2, 1));
        // a missing key falls back to its parent
        assert_eq!(loc(text, "/steps/0/entity"), (3, 5));
    }

    #[test]
    fn non_ascii_before_a_node_gives_byte_offsets() {
        let text = "name: \"Café São Paulo ✓\"\nbad: 1\n";
        let located = parse_yaml(text).unwrap_or_default();
        let span = located.locate("/bad").unwrap_or_default();
        assert_eq!((span.start.line, span.start.column), (2, 6));
        assert_eq!(&text[span.start.byte..span.end.byte], "1");
        let key = located.keys["/name"];
        assert_eq!(&text[key.start.byte..key.end.byte], "name");
    }

    #[test]
    fn scalars_follow_yaml_1_2_core() {
        let located = parse_yaml("a: yes\nb: true\nc: 1.50\nd: ~\ne: 012\n").unwrap_or_default();
        assert_eq!(located.value["a"], "yes");
        assert_eq!(located.value["b"], true);
        assert_eq!(located.value["c"], 1.5);
        assert!(located.value["d"].is_null());
    }

    fn first_code(text: &str) -> Code {
        match parse_yaml(text) {
            Ok(_) => panic!("expected an error"),
            Err(d) => d[0].code,
        }
    }

    #[test]
    fn bad_files_get_specific_codes() {
        assert_eq!(first_code("a: 1\na: 2\n"), Code::DuplicateKey);
        assert_eq!(first_code("a:\n\t- b\n"), Code::YamlTab);
        assert_eq!(first_code("a: [1, 2\n"), Code::YamlSyntax);
        assert_eq!(first_code(""), Code::EmptyFile);
        assert_eq!(first_code("# only a comment\n"), Code::EmptyFile);
        assert_eq!(first_code("a: 1\n---\nb: 2\n"), Code::MultipleDocuments);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        assert_eq!(first_code(&text), Code::AliasLimit);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(500), "]".repeat(500));
        assert!(parse_yaml(&text).is_err());
    }
}
