//! Project-level rules: secrets only as `${env:..}`/`${file:..}` references, valid
//! references, known environments and connectors, a `state.keep_runs` above
//! zero, declarative `http` operations (templates, JSONPaths, entity actions)
//! and flow test files.

use crate::diag::{Code, Diagnostic};
use crate::expr::CompiledPath;
use crate::spec::project::AuthSpec;

use super::{Cx, TextMode, undeclared};

pub(super) fn check(cx: &mut Cx<'_>) {
    check_project_file(cx);
    check_connectors(cx);
    check_tests(cx);
}

/// True for a whole-string `${env:NAME}` or `${file:PATH}` reference.
pub(crate) fn is_reference(s: &str) -> bool {
    let Some(inner) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) else {
        return false;
    };
    if let Some(name) = inner.strip_prefix("env:") {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    } else if let Some(path) = inner.strip_prefix("file:") {
        !path.is_empty() && !path.contains('}')
    } else {
        false
    }
}

/// Checks the `${...}` references inside a string (they may be embedded, as in a
/// URL); returns false when one is malformed.
fn references_ok(s: &str) -> bool {
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            return false;
        };
        if !is_reference(&rest[start..start + len + 1]) {
            return false;
        }
        rest = &rest[start + len + 1..];
    }
    true
}

fn check_project_file(cx: &mut Cx<'_>) {
    let project = cx.project;
    let Some(p) = &project.project else { return };
    let file = p.file;
    if let Some(default) = &p.spec.default_environment
        && !p.spec.environments.contains_key(default)
    {
        let names: Vec<&str> = p.spec.environments.keys().map(String::as_str).collect();
        let mut d = Diagnostic::error(
            Code::UnknownEnvironment,
            format!("unknown environment `{default}`"),
        );
        d = match crate::diag::did_you_mean(default, names.iter().copied()) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_help(format!("environments: {}", names.join(", "))),
        };
        cx.report(file, "/default_environment", d);
    }
    if let Some(keep) = p.spec.state.as_ref().and_then(|s| s.keep_runs.as_ref())
        && keep.to_std().is_some_and(|d| d.is_zero())
    {
        let d = Diagnostic::error(
            Code::InvalidValue,
            format!(
                "`keep_runs: {}` would delete the run history as it is written",
                keep.0
            ),
        )
        .with_help("keep it for some time, e.g. `30d` (the default when `keep_runs` is left out)");
        cx.report(file, "/state/keep_runs", d);
    }
    if let Some(located) = project.files.get(file).and_then(|f| f.located.as_ref()) {
        let mut strings = Vec::new();
        collect_strings(&located.value, String::new(), &mut strings);
        for (pointer, s) in strings {
            if s.contains("${") && !references_ok(&s) {
                let d = Diagnostic::error(
                    Code::InvalidReference,
                    format!("malformed reference in `{s}`"),
                )
                .with_help("write `${env:NAME}` (NAME: letters, digits, `_`) or `${file:PATH}`");
                cx.report(file, &pointer, d);
            }
        }
    }
    for (env_name, env) in &p.spec.environments {
        let env_ptr = format!("/environments/{}", crate::source::escape_pointer(env_name));
        for (conn_name, conn) in &env.connections {
            let conn_ptr = format!(
                "{env_ptr}/connections/{}",
                crate::source::escape_pointer(conn_name)
            );
            if !project.connectors.is_empty() && !project.connectors.contains_key(conn_name) {
                let names: Vec<&str> = project.connectors.keys().map(String::as_str).collect();
                let mut d = Diagnostic::error(
                    Code::UnknownConnector,
                    format!("connection for unknown connector `{conn_name}`"),
                );
                d = match crate::diag::did_you_mean(conn_name, names.iter().copied()) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("defined connectors: {}", names.join(", "))),
                };
                cx.report_key(file, &conn_ptr, d);
            }
            let secrets: Vec<(&str, &str)> = match &conn.auth {
                Some(AuthSpec::Oauth2(o)) => {
                    let mut v = Vec::new();
                    if let Some(s) = &o.client_secret {
                        v.push(("oauth2/client_secret", s.as_str()));
                    }
                    if let Some(s) = &o.refresh_token {
                        v.push(("oauth2/refresh_token", s.as_str()));
                    }
                    v
                }
                Some(AuthSpec::Bearer(b)) => vec![("bearer/token", b.token.as_str())],
                _ => Vec::new(),
            };
            for (key, value) in secrets {
                if !is_reference(value) {
                    let d = Diagnostic::error(Code::InlineSecret, "a secret is written inline in the project file")
                        .with_help("use `${env:NAME}` or `${file:PATH}`; cosync resolves it only when the connection is used and never prints it");
                    cx.report(file, &format!("{conn_ptr}/auth/{key}"), d);
                }
            }
        }
    }
}

fn collect_strings(v: &serde_json::Value, pointer: String, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::String(s) => out.push((pointer, s.clone())),
        serde_json::Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                collect_strings(x, format!("{pointer}/{i}"), out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, x) in map {
                collect_strings(
                    x,
                    format!("{pointer}/{}", crate::source::escape_pointer(k)),
                    out,
                );
            }
        }
        _ => {}
    }
}

fn check_path(cx: &mut Cx<'_>, file: usize, pointer: &str, path: &str) {
    if let Err(e) = CompiledPath::compile(path) {
        super::mappings::report_path_error(cx, file, pointer, path, &e);
    }
}

fn check_connectors(cx: &mut Cx<'_>) {
    let project = cx.project;
    for c in project.connectors.values() {
        let file = c.file;
        let spec = &c.spec;
        if spec.kind == crate::spec::connector::ConnectorKind::Http && spec.operations.is_empty() {
            let d = Diagnostic::error(
                Code::MissingKey,
                "missing required key `operations`: an `http` connector's operations are request templates",
            )
            .with_help("add `operations:` with at least one request template (method, path, ...)");

            cx.report_key(file, "/kind", d);
        }
        for (name, op) in &spec.operations {
            let p = format!("/operations/{}", crate::source::escape_pointer(name));
            let mut allowed: Vec<String> = op.inputs.clone();
            allowed.extend(["connection", "page"].map(String::from));
            let mut resolve = |v: &str| {
                (!allowed.iter().any(|a| a == v)).then(|| {
                    let d = undeclared(v, &allowed, "in this operation");
                    let declare = format!("declare it under `inputs:` of operation `{name}`");
                    let help = match d.help.clone() {
                        Some(h) if h.starts_with("did you mean") => format!("{h} (or {declare})"),
                        _ => declare,
                    };
                    d.with_help(help)
                })
            };
            cx.check_text(
                file,
                &format!("{p}/path"),
                &op.path,
                TextMode::Template,
                &mut resolve,
            );
            for (k, v) in op
                .query
                .iter()
                .map(|(k, v)| ("query", (k, v)))
                .chain(op.headers.iter().map(|(k, v)| ("headers", (k, v))))
            {
                cx.check_text(
                    file,
                    &format!("{p}/{k}/{}", crate::source::escape_pointer(v.0)),
                    v.1,
                    TextMode::Template,
                    &mut resolve,
                );
            }
            if let Some(body) = &op.body {
                cx.check_value_templates(file, &format!("{p}/body"), body, &mut resolve);
            }
            if let Some(r) = &op.response {
                for (key, path) in [("select", &r.select), ("id", &r.id)] {
                    if let Some(path) = path {
                        check_path(cx, file, &format!("{p}/response/{key}"), path);
                    }
                }
            }
            if let Some(pg) = &op.pagination {
                use crate::spec::connector::PaginationSpec;
                match pg {
                    PaginationSpec::NextLink { path } => {
                        check_path(cx, file, &format!("{p}/pagination/next_link/path"), path)
                    }
                    PaginationSpec::Cursor { path, .. } => {
                        check_path(cx, file, &format!("{p}/pagination/cursor/path"), path)
                    }
                    PaginationSpec::Offset { .. } => {}
                }
            }
            for (i, rule) in op.errors.iter().enumerate() {
                for (key, path) in [("when", &rule.when), ("message", &rule.message)] {
                    if let Some(path) = path {
                        check_path(cx, file, &format!("{p}/errors/{i}/{key}"), path);
                    }
                }
            }
        }
        for (ename, entity) in &spec.entities {
            let Some(actions) = &entity.actions else {
                continue;
            };
            let ep = format!("/entities/{}/actions", crate::source::escape_pointer(ename));
            for (key, op) in [
                ("get", &actions.get),
                ("find", &actions.find),
                ("create", &actions.create),
                ("update", &actions.update),
            ] {
                if let Some(op) = op {
                    cx.operation(file, &format!("{ep}/{key}"), spec, op);
                }
            }
        }
    }
}

fn check_tests(cx: &mut Cx<'_>) {
    let project = cx.project;
    for t in project.tests.values() {
        let file = t.file;
        let flow = match project.flows.get(&t.spec.flow) {
            Some(f) => Some(&f.spec),
            None => {
                let names: Vec<&str> = project.flows.keys().map(String::as_str).collect();
                let mut d =
                    Diagnostic::error(Code::UnknownFlow, format!("unknown flow `{}`", t.spec.flow));
                if let Some(s) = crate::diag::did_you_mean(&t.spec.flow, names.iter().copied()) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                cx.report(file, "/flow", d);
                None
            }
        };
        let dir = project
            .files
            .get(file)
            .and_then(|f| f.path.parent().map(std::path::Path::to_path_buf))
            .unwrap_or_default();
        let mut givens = vec![("/given".to_string(), &t.spec.given)];
        for (i, case) in t.spec.cases.iter().enumerate() {
            givens.push((format!("/cases/{i}/given"), &case.given));
        }
        for (gp, given) in givens {
            for (conn, entities) in given {
                let cp = format!("{gp}/{}", crate::source::escape_pointer(conn));
                let Some(c) = project.connectors.get(conn).map(|c| &c.spec) else {
                    cx.connector(file, &cp, conn);
                    continue;
                };
                for (ent, records) in entities {
                    let ep = format!("{cp}/{}", crate::source::escape_pointer(ent));
                    if c.entities.is_empty() || c.entities.contains_key(ent) {
                        for (i, r) in records.iter().enumerate() {
                            if let crate::spec::flowtest::RecordSource::File(f) = r
                                && !dir.join(&f.file).is_file()
                            {
                                let d = Diagnostic::error(
                                    Code::Io,
                                    format!("fixture file `{}` does not exist", f.file),
                                )
                                .with_help("paths are relative to the test file");
                                cx.report(file, &format!("{ep}/{i}/file"), d);
                            }
                        }
                    } else {
                        cx.entity(file, &ep, c, ent);
                    }
                }
            }
        }
        for (i, case) in t.spec.cases.iter().enumerate() {
            let xp = format!("/cases/{i}/expect");
            for (j, w) in case.expect.writes.iter().enumerate() {
                let wp = format!("{xp}/writes/{j}");
                if let Some(c) = cx.connector(file, &format!("{wp}/connector"), &w.connector) {
                    if let Some(e) = &w.entity {
                        cx.entity(file, &format!("{wp}/entity"), c, e);
                    }
                    if let Some(op) = &w.operation {
                        cx.operation(file, &format!("{wp}/operation"), c, op);
                    }
                }
            }
            for (j, conn) in case.expect.no_writes.iter().enumerate() {
                cx.connector(file, &format!("{xp}/no_writes/{j}"), conn);
            }
            if let Some(flow) = flow {
                let ids = step_ids(&flow.steps);
                for id in case.expect.outputs.keys() {
                    if !ids.contains(id) {
                        let mut d = Diagnostic::error(
                            Code::UnknownStep,
                            format!("flow `{}` has no step `{id}`", flow.flow),
                        );
                        if let Some(s) =
                            crate::diag::did_you_mean(id, ids.iter().map(String::as_str))
                        {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                        cx.report_key(
                            file,
                            &format!("{xp}/outputs/{}", crate::source::escape_pointer(id)),
                            d,
                        );
                    }
                }
            }
        }
    }
}

fn step_ids(steps: &[crate::spec::flow::Step]) -> Vec<String> {
    let mut out = Vec::new();
    for s in steps {
        if let Some(id) = s.id() {
            out.push(id.to_string());
        }
        if let crate::spec::flow::Step::Set(set) = s {
            out.extend(set.set.keys().cloned());
        }
        for (_, children) in s.children() {
            out.extend(step_ids(children));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert!(is_reference("${env:PC_SECRET}"));
        assert!(is_reference("${file:/run/secrets/x}"));
        assert!(!is_reference("${env:1BAD}"));
        assert!(!is_reference("${vault:x}"));
        assert!(!is_reference("hunter2"));
        assert!(references_ok("https://${env:ORG}.crm.dynamics.com"));
        assert!(!references_ok("https://${env:ORG.crm.dynamics.com"));
        assert!(!references_ok("${envORG}"));
    }
}
