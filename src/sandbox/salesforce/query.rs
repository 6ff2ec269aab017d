//! SOQL execution: filtering, ordering, `LIMIT`/`OFFSET`, parent fields, `COUNT()`, and
//! `done`/`nextRecordsUrl` paging over a server-side cursor (batch size from
//! `Sforce-Query-Options: batchSize=N`; cursors expire after 15 idle minutes).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::Request;
use super::ids;
use super::record::{self, Record, bad};
use super::soql::{self, Column, Condition, Literal, Op, Query};
use crate::sandbox::body;
use crate::sandbox::error::ApiError;
use crate::sandbox::stamp;
use crate::sandbox::state::Sandbox;

/// How long an unused cursor lives.
const CURSOR_TTL: Duration = Duration::from_secs(15 * 60);

type Tables = BTreeMap<String, BTreeMap<String, Record>>;

/// The rest of a query's results, for `nextRecordsUrl`.
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    records: Vec<Value>,
    batch: usize,
    touched: Instant,
}

fn value<'a>(column: &Column, record: &'a Record, tables: &'a Tables) -> &'a Value {
    match column {
        Column::Field(field) => record.get(field.name).unwrap_or(&Value::Null),
        Column::Parent {
            reference,
            target,
            field,
            ..
        } => record
            .get(reference.name)
            .and_then(Value::as_str)
            .and_then(|id| tables.get(target.name)?.get(id))
            .and_then(|parent| parent.get(field.name))
            .unwrap_or(&Value::Null),
    }
}

fn order_of(value: &Value, literal: &Literal) -> Option<Ordering> {
    match literal {
        Literal::Null => None,
        Literal::Bool(b) => value.as_bool().map(|v| v.cmp(b)),
        Literal::Number(n) => value.as_f64().and_then(|v| v.partial_cmp(n)),
        Literal::Text(t) => value
            .as_str()
            .map(|v| v.to_lowercase().cmp(&t.to_lowercase())),
        Literal::Date(d) => value
            .as_str()
            .and_then(stamp::parse)
            .map(|v| v.date_naive().cmp(d)),
        Literal::DateTime(t) => value.as_str().and_then(stamp::parse).map(|v| v.cmp(t)),
        Literal::Days(..) => None,
    }
}

fn compare(value: &Value, op: Op, literal: &Literal) -> bool {
    if *literal == Literal::Null {
        return match op {
            Op::Eq => value.is_null(),
            Op::Ne => !value.is_null(),
            _ => false,
        };
    }
    if value.is_null() {
        return op == Op::Ne;
    }
    if let Literal::Days(start, end) = literal {
        let Some(day) = value
            .as_str()
            .and_then(stamp::parse)
            .map(|t| t.date_naive())
        else {
            return false;
        };
        return match op {
            Op::Eq => *start <= day && day < *end,
            Op::Ne => !(*start <= day && day < *end),
            Op::Lt => day < *start,
            Op::Le => day < *end,
            Op::Gt => day >= *end,
            Op::Ge => day >= *start,
        };
    }
    let ordering = order_of(value, literal);
    match op {
        Op::Eq => ordering == Some(Ordering::Equal),
        Op::Ne => ordering != Some(Ordering::Equal),
        Op::Lt => ordering == Some(Ordering::Less),
        Op::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => ordering == Some(Ordering::Greater),
        Op::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// SOQL `LIKE`: `%` any run, `_` one character, `\` escapes; case-insensitive.
fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let mut tokens = Vec::new();
    let mut chars = pattern
        .to_lowercase()
        .chars()
        .collect::<Vec<_>>()
        .into_iter();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '\\' => Some(chars.next().unwrap_or('\\')),
            '%' => None,
            '_' => Some('\u{0}'),
            other => Some(other),
        });
    }
    // matched[j] = text[..i] matches tokens[..j]
    let mut matched = vec![false; tokens.len() + 1];
    matched[0] = true;
    for j in 1..=tokens.len() {
        matched[j] = matched[j - 1] && tokens[j - 1].is_none();
    }
    for ch in &text {
        let mut next = vec![false; tokens.len() + 1];
        for j in 1..=tokens.len() {
            next[j] = match tokens[j - 1] {
                None => next[j - 1] || matched[j],
                Some('\u{0}') => matched[j - 1],
                Some(t) => matched[j - 1] && t == *ch,
            };
        }
        matched = next;
    }
    matched[tokens.len()]
}

fn matches(condition: &Condition, record: &Record, tables: &Tables) -> bool {
    match condition {
        Condition::And(a, b) => matches(a, record, tables) && matches(b, record, tables),
        Condition::Or(a, b) => matches(a, record, tables) || matches(b, record, tables),
        Condition::Not(a) => !matches(a, record, tables),
        Condition::Compare(column, op, literal) => {
            compare(value(column, record, tables), *op, literal)
        }
        Condition::Like(column, pattern) => value(column, record, tables)
            .as_str()
            .is_some_and(|v| like(v, pattern)),
        Condition::In(column, values, negated) => {
            let v = value(column, record, tables);
            values.iter().any(|l| compare(v, Op::Eq, l)) != *negated
        }
    }
}

fn sort_key(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => match (stamp::parse(x), stamp::parse(y)) {
            (Some(x), Some(y)) if x != y => x.cmp(&y),
            _ => x.to_lowercase().cmp(&y.to_lowercase()),
        },
        _ => Ordering::Equal,
    }
}

fn render(query: &Query, record: &Record, tables: &Tables, version: &str) -> Value {
    let id = record.get("Id").and_then(Value::as_str).unwrap_or("");
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({"type": query.sobject.name, "url": record::url(version, query.sobject.name, id)}),
    );
    for column in &query.columns {
        match column {
            Column::Field(field) => {
                out.insert(field.name.to_owned(), value(column, record, tables).clone());
            }
            Column::Parent {
                relationship,
                reference,
                target,
                field,
            } => {
                let parent_id = record.get(reference.name).and_then(Value::as_str);
                let parent = parent_id.and_then(|id| tables.get(target.name)?.get(id));
                match (parent_id, parent) {
                    (Some(parent_id), Some(parent)) => {
                        let entry = out.entry(relationship.to_string()).or_insert_with(|| {
                            json!({"attributes": {"type": target.name, "url": record::url(version, target.name, parent_id)}})
                        });
                        if let Some(map) = entry.as_object_mut() {
                            map.insert(
                                field.name.to_owned(),
                                parent.get(field.name).cloned().unwrap_or(Value::Null),
                            );
                        }
                    }
                    _ => {
                        out.insert(relationship.to_string(), Value::Null);
                    }
                }
            }
        }
    }
    Value::Object(out)
}

fn execute(query: &Query, tables: &Tables, version: &str) -> Vec<Value> {
    let empty = BTreeMap::new();
    let table = tables.get(query.sobject.name).unwrap_or(&empty);
    let mut rows: Vec<&Record> = table
        .values()
        .filter(|r| {
            query
                .condition
                .as_ref()
                .is_none_or(|c| matches(c, r, tables))
        })
        .collect();
    rows.sort_by(|a, b| {
        for key in &query.order {
            let (x, y) = (value(&key.column, a, tables), value(&key.column, b, tables));
            let ordering = match (x.is_null(), y.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => {
                    if key.nulls_last {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (false, true) => {
                    if key.nulls_last {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (false, false) => {
                    let o = sort_key(x, y);
                    if key.descending { o.reverse() } else { o }
                }
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        let created = |r: &Record| {
            r.get("CreatedDate")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let id = |r: &Record| r.get("Id").and_then(Value::as_str).unwrap_or("").to_owned();
        created(a).cmp(&created(b)).then_with(|| id(a).cmp(&id(b)))
    });
    rows.into_iter()
        .skip(query.offset.unwrap_or(0))
        .take(query.limit.unwrap_or(usize::MAX))
        .map(|r| render(query, r, tables, version))
        .collect()
}

fn batch_size(request: &Request, default: usize) -> usize {
    body::header_text(&request.headers, "sforce-query-options")
        .and_then(|options| {
            options
                .split(',')
                .filter_map(|o| o.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        })
        .unwrap_or(default)
        .clamp(1, 2000)
}

/// `GET /query?q=` (and `/queryAll`).
pub(super) fn run(
    sandbox: &Sandbox,
    version: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    let pairs = body::query_pairs(request.uri.query());
    let text = body::query_value(&pairs, "q").ok_or_else(|| {
        bad(
            "MALFORMED_QUERY",
            "A query string must be specified in the q parameter",
            &[],
        )
    })?;
    let query = soql::parse(text)?;
    let (tables, default_batch) = sandbox.with_core(|core| {
        core.cursors.retain(|_, c| c.touched.elapsed() < CURSOR_TTL);
        (core.salesforce.clone(), core.settings.salesforce_batch_size)
    });
    let records = execute(&query, &tables, version);
    if query.count {
        return Ok(
            Json(json!({"totalSize": records.len(), "done": true, "records": []})).into_response(),
        );
    }
    let batch = batch_size(request, default_batch);
    let total = records.len();
    if total <= batch {
        return Ok(
            Json(json!({"totalSize": total, "done": true, "records": records})).into_response(),
        );
    }
    let random = (uuid::Uuid::new_v4().as_u128() % 13_537_086_546_263_552) as u64;
    let locator = ids::new_id("01g", random);
    let first: Vec<Value> = records[..batch].to_vec();
    sandbox.with_core(|core| {
        core.cursors.insert(
            locator.clone(),
            Cursor {
                records,
                batch,
                touched: Instant::now(),
            },
        );
    });
    Ok(Json(json!({
        "totalSize": total,
        "done": false,
        "nextRecordsUrl": format!("/services/data/{version}/query/{locator}-{batch}"),
        "records": first,
    }))
    .into_response())
}

/// `GET /query/{locator}-{offset}`.
pub(super) fn more(sandbox: &Sandbox, version: &str, locator: &str) -> Result<Response, ApiError> {
    let invalid = || bad("INVALID_QUERY_LOCATOR", "invalid query locator", &[]);
    let (cursor, offset) = locator.rsplit_once('-').ok_or_else(invalid)?;
    let offset: usize = offset.parse().map_err(|_| invalid())?;
    let page = sandbox.with_core(|core| {
        let entry = core.cursors.get_mut(cursor)?;
        entry.touched = Instant::now();
        let total = entry.records.len();
        let start = offset.min(total);
        let end = (start + entry.batch).min(total);
        let records = entry.records[start..end].to_vec();
        if end >= total {
            core.cursors.remove(cursor);
        }
        Some((records, total, end))
    });
    let (records, total, end) = page.ok_or_else(invalid)?;
    let mut body = Map::new();
    body.insert("totalSize".into(), json!(total));
    body.insert("done".into(), json!(end >= total));
    if end < total {
        body.insert(
            "nextRecordsUrl".into(),
            json!(format!("/services/data/{version}/query/{cursor}-{end}")),
        );
    }
    body.insert("records".into(), Value::Array(records));
    Ok(Json(Value::Object(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_wildcards() {
        assert!(like("Contoso Deal", "co%"));
        assert!(like("Contoso Deal", "%DEAL"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "a_d"));
        assert!(like("50%", "50\\%"));
        assert!(!like("500", "50\\%"));
    }
}
