//! Types and coercions of mapped values, and the normalised comparison that keeps
//! diffs free of spurious changes (`1000` vs `"1000.00"`, `2026-01-31` vs
//! `2026-01-31T00:00:00Z`, `null` vs `""`).

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

use crate::spec::common::Side;
use crate::spec::mapping::FieldType;

/// A value that does not fit its row's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    /// The expected type.
    pub expected: FieldType,
    /// The offending value, as text.
    pub found: String,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parses a decimal from a JSON number or numeric string.
pub fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        Value::String(s) => Decimal::from_str(s.trim()).ok(),
        _ => None,
    }
}

fn decimal_json(d: Decimal) -> Value {
    let d = d.normalize();
    if d.scale() == 0
        && let Some(i) = d.to_i64()
    {
        return Value::from(i);
    }
    d.to_f64().map_or(Value::Null, Value::from)
}

/// Parses a datetime (RFC 3339, any offset) or a date (midnight UTC).
pub fn instant(v: &Value) -> Option<DateTime<Utc>> {
    let s = v.as_str()?.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(naive.and_utc());
    }
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

/// The calendar date (UTC) of a date or datetime.
pub fn date(v: &Value) -> Option<NaiveDate> {
    instant(v).map(|dt| dt.date_naive())
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The items of a list value, or of text joined with `separator`; empty items
/// (`"a, b,"`, `[""]`) are dropped.
pub fn items(v: &Value, separator: &str) -> Vec<Value> {
    let list: Vec<Value> = match v {
        Value::Array(a) => a.clone(),
        Value::String(s) => s
            .split(separator)
            .map(|p| Value::String(p.trim().to_string()))
            .collect(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    };
    list.into_iter().filter(|x| !is_empty(x)).collect()
}

/// True for "no value": null, or empty text.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Converts `v` to the representation of `ty` on `target`. `as_text` says the
/// target field stores lists as joined text.
pub fn coerce(
    ty: FieldType,
    v: &Value,
    target: Side,
    as_text: bool,
    separator: &str,
) -> Result<Value, TypeError> {
    let err = || TypeError {
        expected: ty,
        found: text(v),
    };
    if v.is_null() {
        return Ok(Value::Null);
    }
    Ok(match ty {
        FieldType::String => match v {
            Value::String(_) => v.clone(),
            Value::Number(_) | Value::Bool(_) => Value::String(text(v)),
            _ => return Err(err()),
        },
        FieldType::Number | FieldType::Money => {
            if is_empty(v) {
                return Ok(Value::Null);
            }
            decimal_json(decimal(v).ok_or_else(err)?)
        }
        FieldType::Date => {
            if is_empty(v) {
                return Ok(Value::Null);
            }
            let d = date(v).ok_or_else(err)?;
            match target {
                // Partner Center keeps only datetimes: midnight UTC.
                Side::PartnerCenter => Value::String(format!("{}T00:00:00Z", d.format("%Y-%m-%d"))),
                Side::Crm => Value::String(d.format("%Y-%m-%d").to_string()),
            }
        }
        FieldType::Datetime => {
            if is_empty(v) {
                return Ok(Value::Null);
            }
            Value::String(
                instant(v)
                    .ok_or_else(err)?
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true),
            )
        }
        FieldType::Bool => Value::Bool(boolean(v).ok_or_else(err)?),
        FieldType::Option | FieldType::Lookup => match v {
            Value::Array(_) | Value::Object(_) => return Err(err()),
            _ => v.clone(),
        },
        FieldType::List | FieldType::MultiOption => {
            let list = items(v, separator);
            if as_text {
                Value::String(list.iter().map(text).collect::<Vec<_>>().join(separator))
            } else {
                Value::Array(list)
            }
        }
    })
}

/// True when `a` and `b` are the same value of type `ty` (after normalising).
pub fn same(ty: FieldType, a: &Value, b: &Value, separator: &str) -> bool {
    if a == b {
        return true;
    }
    if is_empty(a) || is_empty(b) {
        let list_empty = |v: &Value| matches!(v, Value::Array(x) if x.is_empty());
        return (is_empty(a) || list_empty(a)) && (is_empty(b) || list_empty(b));
    }
    match ty {
        FieldType::Number | FieldType::Money => {
            matches!((decimal(a), decimal(b)), (Some(x), Some(y)) if x == y)
        }
        FieldType::Date => matches!((date(a), date(b)), (Some(x), Some(y)) if x == y),
        FieldType::Datetime => {
            matches!((instant(a), instant(b)), (Some(x), Some(y)) if x.timestamp() == y.timestamp())
        }
        FieldType::Bool => matches!((boolean(a), boolean(b)), (Some(x), Some(y)) if x == y),
        FieldType::List | FieldType::MultiOption => {
            let mut x: Vec<String> = items(a, separator).iter().map(text).collect();
            let mut y: Vec<String> = items(b, separator).iter().map(text).collect();
            x.sort();
            y.sort();
            x == y
        }
        FieldType::Lookup => text(a).eq_ignore_ascii_case(&text(b)),
        FieldType::Option | FieldType::String => scalar_text(a) == scalar_text(b),
    }
}

/// Text form of a scalar with numbers normalised (`1` = `1.0` = `"1"`).
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::Number(_) => decimal(v).map_or_else(|| v.to_string(), |d| d.normalize().to_string()),
        Value::String(s) => match Decimal::from_str(s) {
            Ok(d) if !s.is_empty() && s.trim() == s => d.normalize().to_string(),
            _ => s.clone(),
        },
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(scalar_text).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_compares_without_drift() {
        assert!(same(FieldType::Money, &json!(1000), &json!("1000.00"), ","));
        assert!(same(FieldType::Money, &json!(0.1), &json!("0.10"), ","));
        assert!(!same(FieldType::Money, &json!(1000.01), &json!(1000), ","));
        assert_eq!(
            coerce(FieldType::Money, &json!("1000.50"), Side::Crm, false, ","),
            Ok(json!(1000.5))
        );
        assert_eq!(
            coerce(FieldType::Money, &json!("25000"), Side::Crm, false, ","),
            Ok(json!(25000))
        );
    }

    #[test]
    fn dates_and_datetimes() {
        assert!(same(
            FieldType::Date,
            &json!("2026-01-31"),
            &json!("2026-01-31T00:00:00Z"),
            ","
        ));
        assert!(same(
            FieldType::Date,
            &json!("2026-01-31T23:30:00-05:00"),
            &json!("2026-02-01"),
            ","
        ));
        assert_eq!(
            coerce(
                FieldType::Date,
                &json!("2019-02-23T02:05:23.2931817Z"),
                Side::Crm,
                false,
                ","
            ),
            Ok(json!("2019-02-23"))
        );
        assert_eq!(
            coerce(
                FieldType::Date,
                &json!("2026-01-31"),
                Side::PartnerCenter,
                false,
                ","
            ),
            Ok(json!("2026-01-31T00:00:00Z"))
        );
        assert!(same(
            FieldType::Datetime,
            &json!("2019-02-23T02:05:23.2931817Z"),
            &json!("2019-02-23T02:05:23Z"),
            ","
        ));
        assert!(coerce(FieldType::Date, &json!("not a date"), Side::Crm, false, ",").is_err());
    }

    #[test]
    fn lists_join_and_split() {
        let l = json!(["SOL-1-ABC", "SOL-2-DEF"]);
        assert_eq!(
            coerce(FieldType::List, &l, Side::Crm, true, ","),
            Ok(json!("SOL-1-ABC,SOL-2-DEF"))
        );
        assert_eq!(
            coerce(
                FieldType::List,
                &json!("SOL-1-ABC, SOL-2-DEF"),
                Side::PartnerCenter,
                false,
                ","
            ),
            Ok(l.clone())
        );
        assert!(same(
            FieldType::List,
            &l,
            &json!("SOL-2-DEF,SOL-1-ABC"),
            ","
        ));
    }

    #[test]
    fn empties_and_options() {
        assert!(same(FieldType::String, &Value::Null, &json!(""), ","));
        assert!(same(
            FieldType::Option,
            &json!(100000000),
            &json!("100000000"),
            ","
        ));
        assert!(!same(FieldType::String, &json!("a"), &json!("b"), ","));
        assert_eq!(
            coerce(FieldType::Bool, &json!("yes"), Side::Crm, false, ","),
            Ok(json!(true))
        );
        assert!(coerce(FieldType::String, &json!({"a": 1}), Side::Crm, false, ",").is_err());
    }
}
