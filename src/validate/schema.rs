//! The JSON Schema check: validates a document against its kind's schema (generated
//! from the `spec` types) and turns each error into a located diagnostic.
//!
//! `oneOf`/`anyOf` failures are drilled down to the branch the user meant — the one
//! whose distinguishing key (a step's kind key, a trigger's kind) is present, or
//! whose type matches — so the error lands on the offending node.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::source::{Located, unescape_pointer};
use crate::spec::FileKind;

struct KindSchema {
    schema: Value,
    validator: Validator,
}

static SCHEMAS: LazyLock<HashMap<FileKind, Option<KindSchema>>> = LazyLock::new(|| {
    FileKind::ALL
        .iter()
        .map(|&kind| {
            let schema = kind.schema().to_value();
            let built = jsonschema::draft202012::new(&schema)
                .ok()
                .map(|validator| KindSchema { schema, validator });
            (kind, built)
        })
        .collect()
});

/// Checks `located` against the schema of `kind`. Returns the diagnostics (without
/// file names); empty when the document is valid.
pub fn check(kind: FileKind, located: &Located) -> Vec<Diagnostic> {
    let Some(Some(ks)) = SCHEMAS.get(&kind) else {
        return vec![Diagnostic::error(
            Code::Schema,
            format!("internal: the {} schema does not compile", kind.key()),
        )];
    };
    let mut out = Vec::new();
    let cx = Cx {
        root: &ks.schema,
        located,
    };
    for err in ks.validator.iter_errors(&located.value) {
        cx.convert(err, &mut out);
    }
    drop_missing_keys_explained_by_typos(&mut out);
    out
}

/// `conector: x` gives "unknown key `conector`, did you mean `connector`?"; the
/// "missing required key `connector`" in the same mapping says nothing more.
fn drop_missing_keys_explained_by_typos(out: &mut Vec<Diagnostic>) {
    let typos: Vec<(String, String)> = out
        .iter()
        .filter(|d| d.code == Code::UnknownKey)
        .filter_map(|d| {
            let meant = d
                .help
                .as_deref()?
                .strip_prefix("did you mean `")?
                .strip_suffix("`?")?;
            let parent = crate::source::parent_pointer(d.pointer.as_deref()?)?;
            Some((
                parent.to_string(),
                format!("missing required key `{meant}`"),
            ))
        })
        .collect();
    out.retain(|d| {
        d.code != Code::MissingKey
            || !typos
                .iter()
                .any(|(p, m)| d.pointer.as_deref() == Some(p.as_str()) && &d.message == m)
    });
}

struct Cx<'a> {
    root: &'a Value,
    located: &'a Located,
}

impl Cx<'_> {
    /// The schema object that holds the failing keyword.
    fn schema_node(&self, schema_path: &str) -> Option<&Value> {
        let parent = crate::source::parent_pointer(schema_path)?;
        self.resolve(self.root.pointer(parent)?)
    }

    /// Follows a local `$ref`.
    fn resolve<'v>(&'v self, mut node: &'v Value) -> Option<&'v Value> {
        for _ in 0..16 {
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) => node = self.root.pointer(r.strip_prefix('#')?)?,
                None => return Some(node),
            }
        }
        None
    }

    fn diag(&self, code: Code, pointer: &str, message: String) -> Diagnostic {
        let mut d = Diagnostic::error(code, message).at_pointer(pointer);
        if let Some(span) = self.located.locate(pointer) {
            d = d.at(span);
        }
        d
    }

    fn convert(&self, err: ValidationError<'_>, out: &mut Vec<Diagnostic>) {
        let message = err.to_string();
        let parts = err.into_parts();
        let ptr = parts.instance_path.as_str().to_string();
        let schema_path = parts.schema_path.as_str().to_string();
        let instance = parts.instance.as_ref();
        match parts.kind {
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                let allowed = self.allowed_keys(&schema_path);
                for key in unexpected {
                    let mut d = self.unknown_key(&ptr, &key, &allowed);
                    if let Some(parent) = self.nested_home(&schema_path, &key) {
                        d.help = Some(format!("`{key}` belongs under `{parent}:`"));
                    }
                    out.push(d);
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or("?").to_string();
                let mut d = self.diag(
                    Code::MissingKey,
                    &ptr,
                    format!("missing required key `{name}`"),
                );
                if let Some(desc) = self
                    .schema_node(&schema_path)
                    .and_then(|n| n.pointer(&format!("/properties/{name}")))
                    .and_then(|p| self.resolve(p))
                    .and_then(|p| p.get("description"))
                    .and_then(Value::as_str)
                {
                    d = d.with_help(format!("add `{name}:` — {}", first_sentence(desc)));
                }
                out.push(d);
            }
            ValidationErrorKind::Type { .. } => {
                let expected = self
                    .schema_node(&schema_path)
                    .and_then(|n| n.get("type"))
                    .map(describe_types)
                    .unwrap_or_else(|| "another type".into());
                out.push(self.diag(
                    Code::WrongType,
                    &ptr,
                    format!("expected {expected}, found {}", describe_value(instance)),
                ));
            }
            ValidationErrorKind::Enum { options } => {
                let opts: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(scalar_text).collect())
                    .unwrap_or_default();
                out.push(self.invalid_value(&ptr, instance, &opts));
            }
            ValidationErrorKind::Constant { expected_value } => {
                out.push(self.invalid_value(&ptr, instance, &[scalar_text(&expected_value)]));
            }
            ValidationErrorKind::Pattern { pattern } => {
                let mut d = self.diag(
                    Code::InvalidValue,
                    &ptr,
                    format!(
                        "{} does not have the expected form",
                        describe_value(instance)
                    ),
                );
                if pattern.contains("ms|s|m|h|d") {
                    d.message = format!("{} is not a duration", describe_value(instance));
                    d = d.with_help(
                        "write a whole number and a unit: `500ms`, `30s`, `5m`, `2h`, `7d`",
                    );
                } else {
                    d = d.with_help(format!("it must match `{pattern}`"));
                }
                out.push(d);
            }
            ValidationErrorKind::AnyOf { context }
            | ValidationErrorKind::OneOfNotValid { context } => {
                self.drill(&ptr, &schema_path, instance, context, out);
            }
            _ => out.push(self.diag(Code::Schema, &ptr, message)),
        }
    }

    fn unknown_key(&self, ptr: &str, key: &str, allowed: &[String]) -> Diagnostic {
        let child = format!("{ptr}/{}", crate::source::escape_pointer(key));
        let mut d =
            Diagnostic::error(Code::UnknownKey, format!("unknown key `{key}`")).at_pointer(&child);
        if let Some(span) = self.located.locate_key(&child) {
            d = d.at(span);
        }
        if let Some(s) = did_you_mean(key, allowed.iter().map(String::as_str)) {
            d.with_help(format!("did you mean `{s}`?"))
        } else if !allowed.is_empty() {
            d.with_help(format!("allowed keys here: {}", allowed.join(", ")))
        } else {
            d
        }
    }

    fn invalid_value(&self, ptr: &str, instance: &Value, options: &[String]) -> Diagnostic {
        let d = self.diag(
            Code::InvalidValue,
            ptr,
            format!(
                "{} is not one of: {}",
                describe_value(instance),
                options.join(", ")
            ),
        );
        match instance
            .as_str()
            .and_then(|s| did_you_mean(s, options.iter().map(String::as_str)))
        {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d,
        }
    }

    /// The property of the schema node at `schema_path` whose own mapping allows
    /// `key` (so `max_steps` at a flow's top level belongs under `budget:`).
    fn nested_home(&self, schema_path: &str, key: &str) -> Option<String> {
        let props = self
            .schema_node(schema_path)?
            .get("properties")?
            .as_object()?;
        props.iter().find_map(|(name, sub)| {
            let sub = self.resolve(sub)?;
            let mut candidates = vec![sub];
            for k in ["anyOf", "oneOf"] {
                if let Some(branches) = sub.get(k).and_then(Value::as_array) {
                    candidates.extend(branches.iter().filter_map(|b| self.resolve(b)));
                }
            }
            candidates
                .iter()
                .any(|c| c.get("properties").and_then(|p| p.get(key)).is_some())
                .then(|| name.clone())
        })
    }

    fn allowed_keys(&self, schema_path: &str) -> Vec<String> {
        self.schema_node(schema_path)
            .and_then(|n| n.get("properties"))
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The branches of the `oneOf`/`anyOf` at `schema_path`, resolved.
    fn branches(&self, schema_path: &str) -> Vec<&Value> {
        self.root
            .pointer(schema_path)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|b| self.resolve(b)).collect())
            .unwrap_or_default()
    }

    fn drill(
        &self,
        ptr: &str,
        schema_path: &str,
        instance: &Value,
        context: Vec<Vec<ValidationError<'static>>>,
        out: &mut Vec<Diagnostic>,
    ) {
        let branches = self.branches(schema_path);
        // A choice between constants is an enum.
        let consts: Option<Vec<String>> = branches
            .iter()
            .map(|b| b.get("const").map(scalar_text))
            .collect();
        if let Some(consts) = consts.filter(|c| !c.is_empty()) {
            out.push(self.invalid_value(ptr, instance, &consts));
            return;
        }
        let chosen = match instance {
            Value::Object(obj) => {
                let keys = distinguishing_keys(&branches);
                let hits: Vec<usize> = keys
                    .iter()
                    .enumerate()
                    .filter(|(_, ks)| ks.iter().any(|k| obj.contains_key(k)))
                    .map(|(i, _)| i)
                    .collect();
                if hits.len() == 1 {
                    Some(hits[0])
                } else if keys.iter().all(|k| !k.is_empty()) {
                    out.push(self.no_kind_key(ptr, obj, &keys, &hits));
                    return;
                } else {
                    self.by_type(&branches, instance)
                }
            }
            _ => self.by_type(&branches, instance),
        };
        let mut contexts = context;
        match chosen {
            Some(i) if i < contexts.len() => {
                for e in contexts.swap_remove(i) {
                    self.convert(e, out);
                }
            }
            _ => {
                let expected: BTreeSet<String> = branches
                    .iter()
                    .filter_map(|b| b.get("type"))
                    .map(describe_types)
                    .collect();
                let expected: Vec<String> = expected.into_iter().collect();
                out.push(self.diag(
                    Code::WrongType,
                    ptr,
                    format!(
                        "expected {}, found {}",
                        expected.join(" or "),
                        describe_value(instance)
                    ),
                ));
            }
        }
    }

    fn by_type(&self, branches: &[&Value], instance: &Value) -> Option<usize> {
        let matching: Vec<usize> = branches
            .iter()
            .enumerate()
            .filter(|(_, b)| b.get("type").is_none_or(|t| type_matches(t, instance)))
            .map(|(i, _)| i)
            .collect();
        (matching.len() == 1).then(|| matching[0])
    }

    fn no_kind_key(
        &self,
        ptr: &str,
        obj: &serde_json::Map<String, Value>,
        keys: &[Vec<String>],
        hits: &[usize],
    ) -> Diagnostic {
        let all: Vec<&str> = keys
            .iter()
            .flat_map(|k| k.iter().map(String::as_str))
            .collect();
        let is_step = all.contains(&"get") && all.contains(&"terminate");
        let code = if is_step {
            Code::UnknownStepKind
        } else {
            Code::Schema
        };
        let what = if is_step { "a step" } else { "this mapping" };
        if hits.len() > 1 {
            let found: Vec<String> = hits
                .iter()
                .flat_map(|&i| keys[i].iter())
                .filter(|k| obj.contains_key(*k))
                .map(|k| format!("`{k}`"))
                .collect();
            return self
                .diag(
                    code,
                    ptr,
                    format!(
                        "{what} has exactly one kind key; found {}",
                        found.join(" and ")
                    ),
                )
                .with_help("split it into separate steps");
        }
        let mut d = self.diag(
            code,
            ptr,
            format!("{what} needs one of the keys: {}", all.join(", ")),
        );
        for key in obj.keys() {
            if let Some(s) = did_you_mean(key, all.iter().copied()) {
                let child = format!("{ptr}/{}", crate::source::escape_pointer(key));
                if !is_step {
                    let allowed: Vec<String> = all.iter().map(|k| (*k).to_string()).collect();
                    return self.unknown_key(ptr, key, &allowed);
                }

                if let Some(span) = self.located.locate_key(&child) {
                    d = d.at(span).at_pointer(child);
                }
                return d.with_help(format!("`{key}` is not a kind key; did you mean `{s}`?"));
            }
        }
        d
    }
}

/// Per branch, its kind key: the first required key that no other branch requires
/// (a step's `get:`, a trigger's `partner_center:`). Empty when it has none.
fn distinguishing_keys(branches: &[&Value]) -> Vec<Vec<String>> {
    let required: Vec<Vec<String>> = branches
        .iter()
        .map(|b| {
            b.get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    required
        .iter()
        .enumerate()
        .map(|(i, keys)| {
            keys.iter()
                .find(|k| {
                    required
                        .iter()
                        .enumerate()
                        .all(|(j, other)| j == i || !other.contains(k))
                })
                .into_iter()
                .cloned()
                .collect()
        })
        .collect()
}

fn type_matches(ty: &Value, v: &Value) -> bool {
    match ty {
        Value::String(t) => primitive_matches(t, v),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .any(|t| primitive_matches(t, v)),
        _ => true,
    }
}

fn primitive_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        _ => false,
    }
}

fn describe_types(ty: &Value) -> String {
    let one = |t: &str| match t {
        "object" => "a mapping",
        "array" => "a list",
        "string" => "text",
        "boolean" => "true or false",
        "integer" => "a whole number",
        "number" => "a number",
        "null" => "nothing (null)",
        _ => "a value",
    };
    match ty {
        Value::String(t) => one(t).to_string(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "a value".to_string(),
    }
}

/// Describes a value for a message: its text for scalars, its shape otherwise.
pub fn describe_value(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) if s.chars().count() > 40 => {
            format!("`{}…`", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("`{s}`"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn first_sentence(s: &str) -> String {
    let s = s.split("\n\n").next().unwrap_or(s).replace('\n', " ");
    let mut from = 0;
    while let Some(i) = s[from..].find(". ").map(|i| from + i) {
        let before = &s[..i];
        if !(before.ends_with("e.g") || before.ends_with("i.e") || before.ends_with("etc")) {
            return s[..=i].to_string();
        }
        from = i + 2;
    }
    s
}

/// The last segment of a pointer, unescaped (for messages).
pub fn last_segment(pointer: &str) -> String {
    unescape_pointer(pointer.rsplit('/').next().unwrap_or(""))
}
