//! minijinja templates and expressions: classification of strings, the shared
//! environment (strict undefined, fuel-bounded, no auto-escaping) and static
//! analysis (syntax errors with their byte range, undeclared variables).

use std::collections::HashSet;
use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// Instructions a single template or expression evaluation may execute; bounds
/// runaway loops in user templates.
pub const FUEL: u64 = 50_000;

/// Functions and globals every template may call, besides the variables in scope.
pub const GLOBALS: &[&str] = &["range", "dict", "namespace", "now", "loop", "self"];

/// What a string in a template field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind<'a> {
    /// Plain text: no `{{`/`{%` at all.
    Literal,
    /// Exactly one `{{ expression }}` and nothing else: evaluates to a typed value.
    Expression(&'a str),
    /// Text with interpolations: renders to a string.
    Template,
}

/// Classifies a template field's text.
pub fn classify(text: &str) -> TextKind<'_> {
    if !text.contains("{{") && !text.contains("{%") && !text.contains("{#") {
        return TextKind::Literal;
    }
    let trimmed = text.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        && !inner.contains("{{")
        && !inner.contains("}}")
        && !text.contains("{%")
        && !text.contains("{#")
    {
        return TextKind::Expression(inner);
    }
    TextKind::Template
}

/// Expression fields tolerate a `{{ ... }}` wrapper; returns the bare expression.
pub fn strip_braces(text: &str) -> &str {
    match classify(text) {
        TextKind::Expression(inner) => inner,
        _ => text,
    }
}

/// Builds an environment with cosync's settings and functions.
pub fn new_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_recursion_limit(64);
    // Python string methods (`x.startswith(..)`, `x.split(',')`), which customizers
    // coming from Power Automate expressions reach for.
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_filter("without", without);
    env.add_filter("only", only);

    env.add_function("now", now);

    env
}

static ANALYSIS: LazyLock<Environment<'static>> = LazyLock::new(new_env);

/// The shared environment used for static analysis.
pub fn analysis_env() -> &'static Environment<'static> {
    &ANALYSIS
}

/// A syntax error in a template or expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// What is wrong.
    pub message: String,
    /// Byte range within the analysed text, when known.
    pub range: Option<std::ops::Range<usize>>,
}

impl From<minijinja::Error> for ExprError {
    fn from(e: minijinja::Error) -> Self {
        let message = match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        };
        ExprError {
            message,
            range: e.range(),
        }
    }
}

/// The root variables a template reads (excluding globals), or its syntax error.
pub fn template_variables(text: &str) -> Result<HashSet<String>, ExprError> {
    let tmpl = analysis_env().template_from_str(text)?;
    Ok(without_globals(tmpl.undeclared_variables(false)))
}

/// The root variables an expression reads (excluding globals), or its syntax error.
pub fn expression_variables(text: &str) -> Result<HashSet<String>, ExprError> {
    let expr = analysis_env().compile_expression(text)?;
    Ok(without_globals(expr.undeclared_variables(false)))
}

fn without_globals(mut vars: HashSet<String>) -> HashSet<String> {
    vars.retain(|v| !GLOBALS.contains(&v.as_str()));
    vars
}

fn pick(
    value: &minijinja::Value,
    keys: &[String],
    keep: bool,
) -> Result<minijinja::Value, minijinja::Error> {
    let map = value
        .as_object()
        .filter(|o| matches!(o.repr(), minijinja::value::ObjectRepr::Map))
        .ok_or_else(|| {
            minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "expected a mapping")
        })?;
    let mut out = std::collections::BTreeMap::new();
    for key in map.try_iter().into_iter().flatten() {
        let name = key.as_str().unwrap_or_default().to_string();
        if keys.contains(&name) == keep {
            let v = value.get_item(&key)?;
            out.insert(name, v);
        }
    }
    Ok(minijinja::Value::from(out))
}

/// `changes | without('statecode', 'statuscode')`: the mapping minus these keys.
fn without(
    value: minijinja::Value,
    keys: minijinja::value::Rest<String>,
) -> Result<minijinja::Value, minijinja::Error> {
    pick(&value, &keys, false)
}

/// `record | only('name', 'estimatedvalue')`: just these keys of the mapping.
fn only(
    value: minijinja::Value,
    keys: minijinja::value::Rest<String>,
) -> Result<minijinja::Value, minijinja::Error> {
    pick(&value, &keys, true)
}

/// `now()`: the run's clock (`run.now`, fixed in tests with `now:`), else the
/// current UTC time, as RFC 3339 with seconds.
fn now(state: &minijinja::State<'_, '_>) -> String {
    state
        .lookup("run")
        .and_then(|run| run.get_attr("now").ok())
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_text() {
        assert_eq!(classify("plain"), TextKind::Literal);
        assert_eq!(
            classify("{{ referral.id }}"),
            TextKind::Expression(" referral.id ")
        );
        assert_eq!(classify(" {{x}} "), TextKind::Expression("x"));
        assert_eq!(classify("id-{{ x }}"), TextKind::Template);
        assert_eq!(classify("{{ a }}{{ b }}"), TextKind::Template);
        assert_eq!(classify("{% if a %}x{% endif %}"), TextKind::Template);
        assert_eq!(strip_braces("{{ a is none }}"), " a is none ");
        assert_eq!(strip_braces("a is none"), "a is none");
    }

    #[test]
    fn finds_variables_and_errors() {
        let vars = expression_variables("opportunity is none and referral.type == 'Shared'")
            .unwrap_or_default();
        assert_eq!(
            vars,
            HashSet::from(["opportunity".to_string(), "referral".to_string()])
        );
        let vars = template_variables("{% for s in xs %}{{ s.id }}{% endfor %} {{ now() }}")
            .unwrap_or_default();
        assert_eq!(vars, HashSet::from(["xs".to_string()]));
        let err = expression_variables("a ==").err();
        assert!(err.is_some());
        let err = template_variables("x {{ a + }}")
            .err()
            .unwrap_or(ExprError {
                message: String::new(),
                range: None,
            });
        assert!(err.message.contains("syntax error"), "{}", err.message);
        assert!(err.range.is_some());
    }
}
