//! OData v4 `$filter` literals, shared by Partner Center and Dataverse: strings
//! single-quoted with quotes doubled, numbers and booleans bare, GUIDs and
//! date/times bare where the field's type calls for them.

use serde_json::Value;

use crate::spec::mapping::FieldType;

/// `'text'` with every `'` doubled.
pub(crate) fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The literal of a JSON scalar by its own type (objects and lists have none).
pub(crate) fn literal(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(string_literal(s)),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// A GUID literal (bare, lower-case), when `value` is one.
pub(crate) fn guid(value: &Value) -> Option<String> {
    let text = value
        .as_str()?
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}');
    uuid::Uuid::parse_str(text)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// The literal of `value` for a field of type `field_type`: numbers, options and
/// money bare even when given as text, booleans bare, dates and date/times bare
/// (when they parse), everything else by its JSON type.
pub(crate) fn typed_literal(value: &Value, field_type: Option<FieldType>) -> Option<String> {
    let text = value.as_str().map(str::trim);
    match (field_type, text) {
        (Some(FieldType::Number | FieldType::Money | FieldType::Option), Some(t))
            if t.parse::<f64>().is_ok_and(f64::is_finite) =>
        {
            Some(t.to_string())
        }
        (Some(FieldType::Bool), Some(t))
            if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") =>
        {
            Some(t.to_ascii_lowercase())
        }
        (Some(FieldType::Date), Some(t))
            if chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok() =>
        {
            Some(t.to_string())
        }
        (Some(FieldType::Datetime), Some(t)) if chrono::DateTime::parse_from_rfc3339(t).is_ok() => {
            Some(t.to_string())
        }
        _ => literal(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literals() {
        assert_eq!(string_literal("O'Brien"), "'O''Brien'");
        assert_eq!(literal(&json!(12.5)).as_deref(), Some("12.5"));
        assert_eq!(literal(&json!(true)).as_deref(), Some("true"));
        assert_eq!(literal(&json!(null)).as_deref(), Some("null"));
        assert_eq!(literal(&json!([1])), None);
        assert_eq!(
            guid(&json!("{6F9619FF-8B86-D011-B42D-00C04FC964FF}")).as_deref(),
            Some("6f9619ff-8b86-d011-b42d-00c04fc964ff")
        );
        assert_eq!(guid(&json!("nope")), None);
        assert_eq!(
            typed_literal(&json!("3"), Some(FieldType::Option)).as_deref(),
            Some("3")
        );
        assert_eq!(
            typed_literal(&json!("3"), Some(FieldType::String)).as_deref(),
            Some("'3'")
        );
        assert_eq!(
            typed_literal(&json!("2024-01-31"), Some(FieldType::Date)).as_deref(),
            Some("2024-01-31")
        );
        assert_eq!(
            typed_literal(&json!("1 or 1 eq 1"), Some(FieldType::Number)).as_deref(),
            Some("'1 or 1 eq 1'")
        );
    }
}
