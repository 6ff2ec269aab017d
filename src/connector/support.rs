//! Small helpers the connector kinds share: reading `call` inputs, entity
//! settings, loose equality (as the in-memory set compares), errors.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::mapping::coerce::scalar_text;
use crate::runtime::connectors::{ConnectorError, ErrorKind};
use crate::spec::connector::{EntitySpec, FieldSpec};
use crate::spec::mapping::FieldType;

/// Most pages followed for one request (a guard against a service that never
/// stops paging).
pub(crate) const MAX_PAGES: usize = 10_000;

/// An `Invalid` error.
pub(crate) fn invalid(message: impl Into<String>) -> ConnectorError {
    ConnectorError::new(ErrorKind::Invalid, message)
}

/// A `NotFound` error for `entity` `key`.
pub(crate) fn not_found(entity: &str, key: &str) -> ConnectorError {
    ConnectorError {
        kind: ErrorKind::NotFound,
        message: format!("{entity} `{key}` does not exist"),
        status: Some(404),
        stale: false,
    }
}

/// Equality as the in-memory connector set compares: same JSON, or same text
/// ignoring ASCII case (numbers normalised).
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    a == b || scalar_text(a).eq_ignore_ascii_case(&scalar_text(b))
}

/// A scalar as text (`"abc"` → `abc`, `12` → `12`).
pub(crate) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first of `names` present in `inputs` as text.
pub(crate) fn input_text(inputs: &Value, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| inputs.get(*n).and_then(text_of))
        .filter(|s| !s.is_empty())
}

/// Like [`input_text`], or an `Invalid` error naming the input.
pub(crate) fn required_text(
    inputs: &Value,
    names: &[&str],
    operation: &str,
) -> Result<String, ConnectorError> {
    input_text(inputs, names).ok_or_else(|| {
        invalid(format!(
            "{operation} needs the input `{}`",
            names.first().copied().unwrap_or("?")
        ))
    })
}

/// A truthy input: `true`, `"true"`, `"yes"`, `"y"`, `"1"`, `1`.
pub(crate) fn input_flag(inputs: &Value, name: &str) -> bool {
    match inputs.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "true" | "yes" | "y" | "1"
        ),
        _ => false,
    }
}

/// `v` as an object, or an `Invalid` error naming `what`.
pub(crate) fn object<'a>(
    v: &'a Value,
    what: &str,
) -> Result<&'a Map<String, Value>, ConnectorError> {
    v.as_object()
        .ok_or_else(|| invalid(format!("{what} must be a mapping of fields")))
}

/// The field-equality pairs a find's `where` (as an object) holds.
pub(crate) fn pairs(v: Option<&Value>) -> Vec<(String, Value)> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// The settings of the entities of a connector definition.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entities {
    specs: BTreeMap<String, EntitySpec>,
}

impl Entities {
    /// Wraps a definition's entities.
    pub(crate) fn new(specs: &BTreeMap<String, EntitySpec>) -> Entities {
        Entities {
            specs: specs.clone(),
        }
    }

    /// The declared entity names.
    pub(crate) fn names(&self) -> Vec<String> {
        self.specs.keys().cloned().collect()
    }

    /// The collection path (`path`, else `fallback(entity)`).
    pub(crate) fn path(&self, entity: &str, fallback: impl FnOnce(&str) -> String) -> String {
        self.specs
            .get(entity)
            .and_then(|e| e.path.clone())
            .unwrap_or_else(|| fallback(entity))
    }

    /// The key field (`key`, else `fallback(entity)`).
    pub(crate) fn key(&self, entity: &str, fallback: impl FnOnce(&str) -> String) -> String {
        self.specs
            .get(entity)
            .and_then(|e| e.key.clone())
            .unwrap_or_else(|| fallback(entity))
    }

    /// The modification-time field, when declared.
    pub(crate) fn modified_field(&self, entity: &str) -> Option<String> {
        self.specs
            .get(entity)
            .and_then(|e| e.modified_field.clone())
    }

    /// The creation-time field, when declared.
    pub(crate) fn created_field(&self, entity: &str) -> Option<String> {
        self.specs.get(entity).and_then(|e| e.created_field.clone())
    }

    /// A declared field.
    pub(crate) fn field(&self, entity: &str, field: &str) -> Option<&FieldSpec> {
        self.specs.get(entity).and_then(|e| e.fields.get(field))
    }

    /// A declared field's type.
    pub(crate) fn field_type(&self, entity: &str, field: &str) -> Option<FieldType> {
        self.field(entity, field).map(|f| f.field_type)
    }

    /// The declared field names of an entity.
    pub(crate) fn field_names(&self, entity: &str) -> Vec<String> {
        self.specs
            .get(entity)
            .map(|e| e.fields.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The entity whose collection path is `path` (a lookup target may name either).
    pub(crate) fn by_name_or_path(&self, name: &str) -> Option<(&String, &EntitySpec)> {
        self.specs.get_key_value(name).or_else(|| {
            self.specs
                .iter()
                .find(|(_, e)| e.path.as_deref() == Some(name))
        })
    }
}

/// True for field names safe to put in a query (`[A-Za-z0-9_]`, plus `extra`).
pub(crate) fn safe_name(name: &str, extra: &[char]) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
}

/// Client-side equality filter and limit (for services whose filtering is not
/// trusted to match the in-memory semantics).
pub(crate) fn filter_limit(
    rows: Vec<Value>,
    where_fields: &[(String, Value)],
    limit: Option<u32>,
) -> Vec<Value> {
    rows.into_iter()
        .filter(|r| {
            where_fields
                .iter()
                .all(|(k, v)| loose_eq(&crate::runtime::read_field(r, k), v))
        })
        .take(limit.map_or(usize::MAX, |l| l as usize))
        .collect()
}
