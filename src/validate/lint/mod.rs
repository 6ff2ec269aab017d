//! Semantic lint rules, one module per family. Each rule reports with a stable
//! [`Code`] and the JSON pointer of the node it checks; [`Cx`] turns pointers into
//! spans (down to the offending part of a template when it can).

mod flows;
mod mappings;
mod metadata;
mod project;
mod references;

use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::expr::template::{expression_variables, template_variables};
use crate::expr::{ExprError, TextKind, classify, strip_braces};
use crate::source::Span;

use super::ValidProject;

/// Runs every rule.
pub fn run_all(project: &ValidProject, out: &mut Diagnostics) {
    let mut cx = Cx { project, out };
    project::check(&mut cx);
    mappings::check(&mut cx);
    flows::check(&mut cx);
    metadata::check(&mut cx);
}

/// How a string field is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextMode {
    /// Text with `{{ }}` interpolations.
    Template,
    /// A bare expression (a `{{ }}` wrapper is tolerated).
    Expression,
}

/// The lint context: the project and the diagnostics being collected.
pub(crate) struct Cx<'a> {
    pub(crate) project: &'a ValidProject,
    pub(crate) out: &'a mut Diagnostics,
}

impl Cx<'_> {
    /// Reports `d` at the node `pointer` of file `file`.
    pub(crate) fn report(&mut self, file: usize, pointer: &str, d: Diagnostic) {
        let d = self.project.diag(file, pointer, d);
        self.out.push(d);
    }

    /// Reports `d` at the key introducing `pointer`.
    pub(crate) fn report_key(&mut self, file: usize, pointer: &str, d: Diagnostic) {
        let d = self.project.diag_key(file, pointer, d);
        self.out.push(d);
    }

    /// Reports `d` at bytes `range` of the string at `pointer`, when the source
    /// text there matches the string verbatim; else at the whole node.
    pub(crate) fn report_in_text(
        &mut self,
        file: usize,
        pointer: &str,
        text: &str,
        range: Option<std::ops::Range<usize>>,
        d: Diagnostic,
    ) {
        let mut d = self.project.diag(file, pointer, d);
        if let (Some(range), Some(span), Some(f)) = (range, d.span, self.project.files.get(file))
            && let Some(sub) = sub_span(&f.text, &f.lines, span, text, range)
        {
            d.span = Some(sub);
        }
        self.out.push(d);
    }

    /// Parses a template or expression field and checks every variable it reads
    /// with `resolve` (which returns a diagnostic for names that are not in scope).
    /// Returns the variables, or `None` on a syntax error (already reported).
    pub(crate) fn check_text(
        &mut self,
        file: usize,
        pointer: &str,
        text: &str,
        mode: TextMode,
        resolve: &mut dyn FnMut(&str) -> Option<Diagnostic>,
    ) -> Option<Vec<String>> {
        let (analysed, offset, result) = match mode {
            TextMode::Expression => {
                let inner = strip_braces(text);
                let offset = text.find(inner).unwrap_or(0);
                (inner, offset, expression_variables(inner))
            }
            TextMode::Template => match classify(text) {
                TextKind::Literal => return Some(Vec::new()),
                _ => (text, 0, template_variables(text)),
            },
        };
        match result {
            Err(ExprError { message, range }) => {
                let code = match mode {
                    TextMode::Template => Code::InvalidTemplate,
                    TextMode::Expression => Code::InvalidExpression,
                };
                let what = match mode {
                    TextMode::Template => "template",
                    TextMode::Expression => "expression",
                };
                let d = Diagnostic::error(code, format!("invalid {what}: {message}"));
                let range = range.map(|r| r.start + offset..r.end + offset);
                self.report_in_text(file, pointer, text, range, d);
                None
            }
            Ok(vars) => {
                let mut vars: Vec<String> = vars.into_iter().collect();
                vars.sort();
                let code_only = mode == TextMode::Expression;
                for var in &vars {
                    if let Some(d) = resolve(var) {
                        let range = find_identifier(analysed, var, code_only)
                            .map(|i| i + offset..i + offset + var.len());
                        self.report_in_text(file, pointer, text, range, d);
                    }
                }
                Some(vars)
            }
        }
    }

    /// Checks every string inside a JSON value (templates in `values`, `with`, ...).
    pub(crate) fn check_value_templates(
        &mut self,
        file: usize,
        pointer: &str,
        value: &serde_json::Value,
        resolve: &mut dyn FnMut(&str) -> Option<Diagnostic>,
    ) {
        match value {
            serde_json::Value::String(s) => {
                self.check_text(file, pointer, s, TextMode::Template, resolve);
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.check_value_templates(file, &format!("{pointer}/{i}"), v, resolve);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let child = format!("{pointer}/{}", crate::source::escape_pointer(k));
                    self.check_value_templates(file, &child, v, resolve);
                }
            }
            _ => {}
        }
    }
}

/// The span of `range` (bytes of `text`) inside the scalar at `span`, if the
/// source holds `text` verbatim there (plain or quoted without escapes).
fn sub_span(
    source: &str,
    lines: &crate::source::LineIndex,
    span: Span,
    text: &str,
    range: std::ops::Range<usize>,
) -> Option<Span> {
    let start = span.start.byte;
    let first = source.get(start..)?.chars().next()?;
    let content = match first {
        '"' | '\'' => start + 1,
        '|' | '>' => return None,
        _ => start,
    };
    let piece = text.get(range.clone())?;
    if source.get(content + range.start..content + range.end)? != piece {
        return None;
    }
    Some(Span {
        start: lines.pos_of_byte(source, content + range.start),
        end: lines.pos_of_byte(source, content + range.end),
    })
}

/// The byte offset of `name` used as an identifier in `text`: not part of a longer
/// name or an attribute (`.name`), and — unless `code_only` — inside `{{ }}` or
/// `{% %}`.
fn find_identifier(text: &str, name: &str, code_only: bool) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let in_code = |at: usize| {
        code_only || {
            let before = &text[..at];
            let open = before
                .rfind("{{")
                .into_iter()
                .chain(before.rfind("{%"))
                .max();
            let close = before
                .rfind("}}")
                .into_iter()
                .chain(before.rfind("%}"))
                .max();
            matches!((open, close), (Some(o), Some(c)) if o > c)
                || matches!((open, close), (Some(_), None))
        }
    };
    text.match_indices(name).map(|(i, _)| i).find(|&i| {
        let prev = text[..i].chars().next_back();
        let next = text[i + name.len()..].chars().next();
        !prev.is_some_and(|c| is_ident(c) || c == '.') && !next.is_some_and(is_ident) && in_code(i)
    })
}

/// The message and help for a name that is not in scope, with a suggestion.
pub(crate) fn undeclared(var: &str, candidates: &[String], what: &str) -> Diagnostic {
    let d = Diagnostic::error(
        Code::UndeclaredVariable,
        format!("`{var}` is not declared {what}"),
    );
    match crate::diag::did_you_mean(var, candidates.iter().map(String::as_str)) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None if candidates.is_empty() => d,
        None => d.with_help(format!("names in scope: {}", candidates.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::find_identifier;

    #[test]
    fn identifiers_are_found_in_code_only() {
        assert_eq!(
            find_identifier("created {{ created.id }}", "created", false),
            Some(11)
        );
        assert_eq!(
            find_identifier("{{ trigger.resource_id }} {{ id }}", "id", false),
            Some(29)
        );
        assert_eq!(find_identifier("a.b and b", "b", true), Some(8));
        assert_eq!(find_identifier("plain text", "text", false), None);
    }
}
