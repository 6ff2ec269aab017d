//! Declarative operations: request templates from YAML (method, path, query,
//! headers, body as minijinja templates over the inputs, `connection` and `page`),
//! read by a JSONPath selector, paged by next link, cursor or offset, with error
//! rules mapping answers to error kinds. They are compiled once, when a connector
//! is built; the `http` kind is made of them, and built-in kinds run the extra
//! `operations:` their definitions add through them.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use super::http::{Call, Connection, Reply, join};
use super::set::ConnectorConfigError;
use super::support::{MAX_PAGES, filter_limit, invalid, text_of};
use crate::expr::CompiledPath;
use crate::expr::value::{CompiledText, CompiledValue, Env, Scope};
use crate::runtime::connectors::{ConnectorError, ErrorKind};
use crate::spec::connector::{ConnectorSpec, HttpMethod, OperationSpec, PaginationSpec};

enum Paging {
    NextLink(CompiledPath),
    Cursor { path: CompiledPath, param: String },
    Offset { param: String, size: u32 },
}

struct ErrorRule {
    status: u16,
    when: Option<CompiledPath>,
    kind: ErrorKind,
    message: Option<CompiledPath>,
}

struct Operation {
    method: Method,
    path: CompiledText,
    inputs: Vec<String>,
    query: Vec<(String, CompiledText)>,
    headers: Vec<(String, CompiledText)>,
    body: Option<CompiledValue>,
    select: Option<CompiledPath>,
    id: Option<CompiledPath>,
    paging: Option<Paging>,
    errors: Vec<ErrorRule>,
}

/// The named operations of a connector definition, compiled.
#[derive(Default)]
pub(crate) struct Operations {
    ops: BTreeMap<String, Operation>,
}

/// Which records to keep and how many (for entity finds).
pub(crate) struct Keep<'a> {
    /// Field equalities a record must meet.
    pub(crate) where_fields: &'a [(String, Value)],
    /// Most records wanted.
    pub(crate) limit: Option<u32>,
}

fn method(m: HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
    }
}

fn compile_operation(env: Env, op: &OperationSpec) -> Result<Operation, String> {
    let text = |s: &str| CompiledText::template(env, s).map_err(|e| format!("template `{s}`: {e}"));
    let path =
        |s: &str| CompiledPath::compile(s).map_err(|e| format!("JSONPath `{s}`: {}", e.message()));
    let opt_path = |s: &Option<String>| s.as_deref().map(path).transpose();
    Ok(Operation {
        method: method(op.method),
        path: text(&op.path)?,
        inputs: op.inputs.clone(),
        query: op
            .query
            .iter()
            .map(|(k, v)| Ok((k.clone(), text(v)?)))
            .collect::<Result<_, String>>()?,
        headers: op
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), text(v)?)))
            .collect::<Result<_, String>>()?,
        body: op
            .body
            .as_ref()
            .map(|b| CompiledValue::compile(env, b).map_err(|e| format!("body: {e}")))
            .transpose()?,
        select: opt_path(&op.response.as_ref().and_then(|r| r.select.clone()))?,
        id: opt_path(&op.response.as_ref().and_then(|r| r.id.clone()))?,
        paging: match &op.pagination {
            None => None,
            Some(PaginationSpec::NextLink { path: p }) => Some(Paging::NextLink(path(p)?)),
            Some(PaginationSpec::Cursor { path: p, param }) => Some(Paging::Cursor {
                path: path(p)?,
                param: param.clone(),
            }),
            Some(PaginationSpec::Offset { param, size }) => Some(Paging::Offset {
                param: param.clone(),
                size: (*size).max(1),
            }),
        },
        errors: op
            .errors
            .iter()
            .map(|r| {
                Ok(ErrorRule {
                    status: r.status,
                    when: opt_path(&r.when)?,
                    kind: r.kind,
                    message: opt_path(&r.message)?,
                })
            })
            .collect::<Result<_, String>>()?,
    })
}

/// Every match of `path` in `body` as a list: a single-location path yields the
/// items of the list it points at (or the one value), other paths their matches.
fn items(path: Option<&CompiledPath>, body: &Value) -> Vec<Value> {
    let value = match path {
        Some(p) if !matches!(p.shape, crate::expr::PathShape::Single { .. }) => {
            return jsonpath_rust::query::js_path_process(&p.query, body)
                .map(|found| found.into_iter().map(|r| r.val().clone()).collect())
                .unwrap_or_default();
        }
        Some(p) => p.read(body),
        None => body.clone(),
    };
    match value {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn rendered(t: &CompiledText, scope: &minijinja::Value) -> Result<Option<String>, ConnectorError> {
    let v = t
        .eval(scope)
        .map_err(|e| invalid(format!("template `{}`: {e}", t.source())))?;
    Ok(match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(text_of(&other).unwrap_or_else(|| other.to_string())),
    })
}

fn set_param(url: &mut Url, name: &str, value: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    let mut q = url.query_pairs_mut();
    for (k, v) in &kept {
        q.append_pair(k, v);
    }
    q.append_pair(name, value);
}

impl Operations {
    /// Compiles the `operations:` of `spec` (connector `name`).
    pub(crate) fn compile(
        env: Env,
        name: &str,
        spec: &ConnectorSpec,
    ) -> Result<Operations, ConnectorConfigError> {
        let mut ops = BTreeMap::new();
        for (op_name, op) in &spec.operations {
            let compiled = compile_operation(env, op).map_err(|reason| {
                ConnectorConfigError::InvalidOperation {
                    connector: name.to_string(),
                    operation: op_name.clone(),
                    reason,
                }
            })?;
            ops.insert(op_name.clone(), compiled);
        }
        Ok(Operations { ops })
    }

    /// True when an operation of that name exists.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.ops.contains_key(name)
    }

    fn scope(
        &self,
        op: &Operation,
        conn: &Connection,
        base: &Url,
        inputs: &Value,
        page: Value,
    ) -> minijinja::Value {
        let mut scope = Scope::new();
        for name in &op.inputs {
            scope.set_json(name, &Value::Null);
        }
        if let Some(map) = inputs.as_object() {
            for (k, v) in map {
                scope.set_json(k, v);
            }
        }
        scope.set_json(
            "connection",
            &json!({"name": conn.name(), "base_url": base.as_str()}),
        );
        scope.set_json("page", &page);
        scope.to_value()
    }

    fn request(
        &self,
        op: &Operation,
        conn: &Connection,
        base: &Url,
        scope: &minijinja::Value,
    ) -> Result<Call, ConnectorError> {
        let path = rendered(&op.path, scope)?.unwrap_or_default();
        let mut url = if path.starts_with("http://") || path.starts_with("https://") {
            conn.resolve_url(base, &path)?
        } else if path.starts_with('/') {
            join(base, &path)?
        } else {
            join(base, &format!("/{path}"))?
        };
        for (k, v) in &op.query {
            if let Some(v) = rendered(v, scope)? {
                url.query_pairs_mut().append_pair(k, &v);
            }
        }
        let mut call = Call::new(op.method.clone(), url);
        for (k, v) in &op.headers {
            if let Some(v) = rendered(v, scope)? {
                call = call.header(k, v);
            }
        }
        if let Some(body) = &op.body {
            call = call.json(
                body.eval(scope)
                    .map_err(|e| invalid(format!("body: {e}")))?,
            );
        }
        Ok(call)
    }

    fn error(&self, op: &Operation, conn: &Connection, reply: &Reply) -> ConnectorError {
        for rule in op.errors.iter().filter(|r| r.status == reply.status) {
            if rule
                .when
                .as_ref()
                .is_some_and(|w| items(Some(w), &reply.body).is_empty())
            {
                continue;
            }
            let message = rule
                .message
                .as_ref()
                .and_then(|m| text_of(&m.read(&reply.body)));
            return conn.error_as(reply, rule.kind, message);
        }
        conn.error(reply)
    }

    /// Runs operation `name` with `inputs`: the selected result, or for a paged
    /// operation the items of every page (until `keep` has enough).
    pub(crate) async fn run(
        &self,
        conn: &Connection,
        name: &str,
        inputs: &Value,
        keep: Option<Keep<'_>>,
    ) -> Result<(Value, Option<Value>), ConnectorError> {
        let op = self
            .ops
            .get(name)
            .ok_or_else(|| invalid(format!("no operation `{name}`")))?;
        let base = conn.base()?;
        let mut collected = Vec::new();
        let mut next: Option<Url> = None;
        let mut last: Option<Url>;
        let (mut offset, mut cursor) = (0u64, None::<String>);
        for number in 0..MAX_PAGES {
            let page = json!({"number": number, "offset": offset, "cursor": cursor});
            let scope = self.scope(op, conn, &base, inputs, page);
            let mut call = match next.take() {
                Some(url) => {
                    let mut c = self.request(op, conn, &base, &scope)?;
                    c.url = url;
                    c
                }
                None => self.request(op, conn, &base, &scope)?,
            };
            match &op.paging {
                Some(Paging::Offset { param, .. }) => {
                    set_param(&mut call.url, param, &offset.to_string())
                }
                Some(Paging::Cursor { param, .. }) => {
                    if let Some(c) = &cursor {
                        set_param(&mut call.url, param, c);
                    }
                }
                _ => {}
            }
            last = Some(call.url.clone());
            let reply = conn.send_raw(call).await?;
            if !reply.is_success() {
                return Err(self.error(op, conn, &reply));
            }
            let id = op
                .id
                .as_ref()
                .map(|p| p.read(&reply.body))
                .filter(|v| !v.is_null());
            let Some(paging) = &op.paging else {
                let value = match &op.select {
                    Some(p) if matches!(p.shape, crate::expr::PathShape::Single { .. }) => {
                        p.read(&reply.body)
                    }
                    Some(p) => Value::Array(items(Some(p), &reply.body)),
                    None => reply.body.clone(),
                };
                return Ok((value, id));
            };
            let page_items = items(op.select.as_ref(), &reply.body);
            let count = page_items.len();
            collected.extend(page_items);
            if let Some(k) = &keep {
                let kept = filter_limit(collected.clone(), k.where_fields, None).len();
                if k.limit.is_some_and(|l| kept >= l as usize) {
                    break;
                }
            }
            match paging {
                Paging::NextLink(path) => {
                    match text_of(&path.read(&reply.body)).filter(|s| !s.is_empty()) {
                        Some(link) => {
                            let url = conn.resolve_url(&base, &link)?;
                            if Some(&url) == last.as_ref() {
                                // A link to the same page would never end.
                                break;
                            }
                            next = Some(url);
                        }
                        None => break,
                    }
                }
                Paging::Cursor { path, .. } => {
                    let c = text_of(&path.read(&reply.body)).filter(|s| !s.is_empty());
                    if c.is_none() || c == cursor {
                        break;
                    }
                    cursor = c;
                }
                Paging::Offset { size, .. } => {
                    if count < *size as usize {
                        break;
                    }
                    offset += u64::from(*size);
                }
            }
        }
        Ok((Value::Array(collected), None))
    }
}
