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

impl CompiledPath {
    /// Parses `source`.
    pub fn compile(source: &str) -> Result<CompiledPath, PathError> {
        let query = jsonpath_rust::parser::parse_json_path(source)
            .map_err(|e| PathError(first_line(&e.to_string())))?;
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

fn first_line(s: &str) -> String {
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
