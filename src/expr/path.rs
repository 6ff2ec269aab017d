//! JSONPath (RFC 9535) compiled once, with a shape analysis: paths made only of
//! names and indexes can be written as well as read (and use a JSON-pointer fast
//! path); a single `[*]` reads and writes a list.

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};

use crate::domain::FieldStep;

/// A parsed JSONPath.
#[derive(Debug, Clone)]
pub struct CompiledPath {
    /// The source text.
    pub source: String,
    /// The parsed query.
    pub query: JpQuery,
    /// The shape, for writes and fast reads.
    pub shape: PathShape,
}

/// What a path can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathShape {
    /// Only names and indexes: one location, readable via a JSON pointer, writable.
    Single {
        /// The JSON pointer equivalent.
        pointer: String,
        /// The steps (for schema checks).
        steps: Vec<FieldStep>,
    },
    /// Names and indexes with exactly one `[*]`: a list, writable element-wise.
    List {
        /// Pointer of the list.
        list: String,
        /// Pointer inside each element ("" for the element itself).
        element: String,
        /// The steps (for schema checks).
        steps: Vec<FieldStep>,
    },
    /// Filters, slices, descendants, unions, several wildcards: read-only.
    Complex,
}

/// A JSONPath that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub String);

impl PathError {
    /// The 1-based character column where parsing stopped, when the parser said.
    pub fn column(&self) -> Option<usize> {
        let at = self.0.find("--> ")?;
        let rest = &self.0[at + 4..];
        let (_, col) = rest.split_once(':')?;
        col.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    }

    /// A one-line explanation.
    pub fn message(&self) -> String {
        match (self.column(), self.0.find("= ")) {
            (Some(col), Some(i)) => format!(
                "syntax error at character {col} ({})",
                self.0[i + 2..].trim()
            ),
            (Some(col), None) => format!("syntax error at character {col}"),
            _ => self.0.clone(),
        }
    }
}

impl CompiledPath {
    /// Parses `source`.
    pub fn compile(source: &str) -> Result<CompiledPath, PathError> {
        let query = jsonpath_rust::parser::parse_json_path(source)
            .map_err(|e| PathError(flatten(&e.to_string())))?;
        let shape = shape_of(&query);
        Ok(CompiledPath {
            source: source.to_string(),
            query,
            shape,
        })
    }

    /// True when the path can be written to (single location or simple list).
    pub fn is_writable(&self) -> bool {
        !matches!(self.shape, PathShape::Complex)
    }

    /// The name/element steps of a writable path.
    pub fn steps(&self) -> Option<&[FieldStep]> {
        match &self.shape {
            PathShape::Single { steps, .. } | PathShape::List { steps, .. } => Some(steps),
            PathShape::Complex => None,
        }
    }
}

fn flatten(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn shape_of(query: &JpQuery) -> PathShape {
    let mut steps = Vec::new();
    let mut before = String::new();
    let mut after = String::new();
    let mut wildcard = false;
    for seg in &query.segments {
        let sel = match seg {
            Segment::Selector(s) => s,
            Segment::Selectors(v) if v.len() == 1 => &v[0],
            _ => return PathShape::Complex,
        };
        let target = if wildcard { &mut after } else { &mut before };
        match sel {
            Selector::Name(n) => {
                let n = n.trim_matches(|c| c == '\'' || c == '"');
                target.push('/');
                target.push_str(&crate::source::escape_pointer(n));
                steps.push(FieldStep::Name(n.to_string()));
            }
            Selector::Index(i) if *i >= 0 => {
                target.push_str(&format!("/{i}"));
                steps.push(FieldStep::Element);
            }
            Selector::Wildcard if !wildcard => {
                wildcard = true;
                steps.push(FieldStep::Element);
            }
            _ => return PathShape::Complex,
        }
    }
    if wildcard {
        PathShape::List {
            list: before,
            element: after,
            steps,
        }
    } else {
        PathShape::Single {
            pointer: before,
            steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let p = CompiledPath::compile("$.details.dealValue").ok();
        assert!(
            matches!(p.map(|p| p.shape), Some(PathShape::Single { pointer, .. }) if pointer == "/details/dealValue")
        );
        let p = CompiledPath::compile("$.details.requirements.solutions[*].id").ok();
        assert!(
            matches!(p.map(|p| p.shape), Some(PathShape::List { list, element, .. })
            if list == "/details/requirements/solutions" && element == "/id")
        );
        let p = CompiledPath::compile("$['team'][0].email").ok();
        assert!(
            matches!(p.map(|p| p.shape), Some(PathShape::Single { pointer, .. }) if pointer == "/team/0/email")
        );
        for complex in [
            "$..id",
            "$.team[?@.email]",
            "$.a[*].b[*]",
            "$.a[0:2]",
            "$.a['b','c']",
        ] {
            let p = CompiledPath::compile(complex).ok();
            assert!(
                matches!(p.map(|p| p.shape), Some(PathShape::Complex)),
                "{complex}"
            );
        }
        assert!(CompiledPath::compile("details.dealValue").is_err());
        assert!(CompiledPath::compile("$.a[").is_err());
    }
}

impl CompiledPath {
    /// Reads the path: the value at a single location (null when absent), the list
    /// of element values for a `[*]` path (null when the list is absent), or for
    /// complex paths the single match or the list of matches.
    pub fn read(&self, record: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match &self.shape {
            PathShape::Single { pointer, .. } => crate::source::get_pointer(record, pointer)
                .cloned()
                .unwrap_or(Value::Null),
            PathShape::List { list, element, .. } => match crate::source::get_pointer(record, list)
            {
                Some(Value::Array(items)) => Value::Array(
                    items
                        .iter()
                        .map(|i| {
                            crate::source::get_pointer(i, element)
                                .cloned()
                                .unwrap_or(Value::Null)
                        })
                        .collect(),
                ),
                _ => Value::Null,
            },
            PathShape::Complex => {
                let found =
                    jsonpath_rust::query::js_path_process(&self.query, record).unwrap_or_default();
                let mut values: Vec<Value> = found.into_iter().map(|r| r.val().clone()).collect();
                match values.len() {
                    0 => Value::Null,
                    1 => values.swap_remove(0),
                    _ => Value::Array(values),
                }
            }
        }
    }

    /// The pointer written by [`Self::write_value`] (the list's pointer for `[*]`).
    pub fn write_pointer(&self) -> Option<&str> {
        match &self.shape {
            PathShape::Single { pointer, .. } => Some(pointer),
            PathShape::List { list, .. } => Some(list),
            PathShape::Complex => None,
        }
    }

    /// The value to store at [`Self::write_pointer`] so that reading the path gives
    /// `value` (for `[*]` paths: a list of objects built from the element values).
    pub fn write_value(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match &self.shape {
            PathShape::List { element, .. } if !element.is_empty() => match value {
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|item| {
                            let mut obj = Value::Object(serde_json::Map::new());
                            set_pointer(&mut obj, element, item.clone());
                            obj
                        })
                        .collect(),
                ),
                Value::Null => Value::Array(Vec::new()),
                other => other.clone(),
            },
            _ => value.clone(),
        }
    }
}

/// Sets `value` at `pointer` inside `target`, creating objects on the way.
/// Array indexes extend arrays with nulls; a pointer through a scalar replaces it.
pub fn set_pointer(target: &mut serde_json::Value, pointer: &str, value: serde_json::Value) {
    let segments: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(crate::source::unescape_pointer)
        .collect();
    set_segments(target, &segments, value);
}

fn set_segments(node: &mut serde_json::Value, segments: &[String], value: serde_json::Value) {
    use serde_json::Value;
    let Some((seg, rest)) = segments.split_first() else {
        *node = value;
        return;
    };
    if let (Value::Array(items), Ok(index)) = (&mut *node, seg.parse::<usize>()) {
        if items.len() <= index {
            items.resize(index + 1, Value::Null);
        }
        set_segments(&mut items[index], rest, value);
        return;
    }
    if !node.is_object() {
        *node = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = node {
        let child = map.entry(seg.clone()).or_insert(Value::Null);
        set_segments(child, rest, value);
    }
}

#[cfg(test)]
mod read_write_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn read_and_write_round_trip() {
        let r = json!({"details": {"dealValue": 5, "requirements": {"solutions": [{"id": "A", "name": "x"}, {"id": "B"}]}}});
        let p = CompiledPath::compile("$.details.requirements.solutions[*].id").ok();
        let Some(p) = p else { panic!("compile") };
        assert_eq!(p.read(&r), json!(["A", "B"]));
        assert_eq!(p.write_pointer(), Some("/details/requirements/solutions"));
        let mut out = json!({});
        set_pointer(
            &mut out,
            "/details/requirements/solutions",
            p.write_value(&json!(["C"])),
        );
        assert_eq!(p.read(&out), json!(["C"]));
        let q = CompiledPath::compile("$..dealValue").ok();
        assert_eq!(q.map(|q| q.read(&r)), Some(json!(5)));
        let mut v = json!(null);
        set_pointer(&mut v, "/a/b", json!(1));
        assert_eq!(v, json!({"a": {"b": 1}}));
    }
}
