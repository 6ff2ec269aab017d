//! Compiled templates and expressions, and their evaluation against a scope.
//!
//! Compilation happens once per project into an environment that lives for the
//! rest of the process (leaked on purpose: compiled flows keep `'static` handles
//! to it, so the interpreter never parses text).

use std::sync::Arc;

use minijinja::value::{Object, Serde};
use minijinja::{Environment, Expression, Template};
use serde_json::Value;

use super::template::{TextKind, classify, new_env, strip_braces};

/// The process-lifetime environment compiled texts belong to.
pub type Env = &'static Environment<'static>;

/// Creates a new environment for one compiled project.
pub fn leak_env() -> Env {
    Box::leak(Box::new(new_env()))
}

/// A string field, compiled.
#[derive(Clone)]
pub enum CompiledText {
    /// Plain text.
    Literal(String),
    /// One expression: evaluates to a typed value.
    Expr(Arc<Expression<'static, 'static>>, String),
    /// Text with interpolations: renders to a string.
    Template(Arc<Template<'static, 'static>>, String),
    /// A template made only of literal text and plain variable paths
    /// (`{{ record.id }}`), which can be evaluated straight on JSON; the compiled
    /// form is kept for everything else.
    Simple(SimpleText, Box<CompiledText>),
}

/// The parts of a simple template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleText {
    parts: Vec<SimplePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SimplePart {
    Text(String),
    Path(Vec<String>),
}

impl SimpleText {
    /// Parses `text` when it is literal text plus `{{ a.b.c }}` paths only.
    fn parse(text: &str) -> Option<SimpleText> {
        if text.contains("{%") || text.contains("{#") {
            return None;
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(SimplePart::Text(rest[..start].to_string()));
            }
            let end = rest[start..].find("}}")? + start;
            let inner = rest[start + 2..end].trim();
            let segments: Vec<String> = inner.split('.').map(str::to_string).collect();
            let ident = |s: &String| {
                let mut c = s.chars();
                c.next()
                    .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                    && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
            };
            // `{{ none }}` is a literal in minijinja, not a variable.
            const LITERALS: [&str; 6] = ["true", "false", "none", "True", "False", "None"];
            if segments.is_empty()
                || !segments.iter().all(ident)
                || LITERALS.contains(&segments[0].as_str())
            {
                return None;
            }
            parts.push(SimplePart::Path(segments));
            rest = &rest[end + 2..];
        }
        if rest.contains("}}") {
            return None;
        }
        if !rest.is_empty() {
            parts.push(SimplePart::Text(rest.to_string()));
        }
        parts
            .iter()
            .any(|p| matches!(p, SimplePart::Path(_)))
            .then_some(SimpleText { parts })
    }

    /// Evaluates on JSON variables found by `var`. `None` when a value is not plain
    /// text or an integer (or the whole expression's typed value), so that the
    /// caller falls back to minijinja and keeps its exact semantics.
    fn eval<'v>(&self, var: impl Fn(&str) -> Option<&'v Value>) -> Option<Value> {
        let resolve = |path: &[String]| -> Option<&'v Value> {
            let mut v = var(&path[0])?;
            for seg in &path[1..] {
                v = v.as_object()?.get(seg)?;
            }
            Some(v)
        };
        if let [SimplePart::Path(p)] = self.parts.as_slice() {
            return resolve(p).cloned();
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                SimplePart::Text(t) => out.push_str(t),
                SimplePart::Path(p) => match resolve(p)? {
                    Value::String(s) => out.push_str(s),
                    Value::Number(n) if n.is_i64() || n.is_u64() => out.push_str(&n.to_string()),
                    _ => return None,
                },
            }
        }
        Some(Value::String(out))
    }
}

impl std::fmt::Debug for CompiledText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompiledText::Literal(s) => write!(f, "Literal({s:?})"),
            CompiledText::Expr(_, s) => write!(f, "Expr({s:?})"),
            CompiledText::Template(_, s) => write!(f, "Template({s:?})"),
            CompiledText::Simple(_, full) => full.fmt(f),
        }
    }
}

/// An evaluation failure (undefined variable, division by zero, out of fuel, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl From<minijinja::Error> for EvalError {
    fn from(e: minijinja::Error) -> Self {
        let mut msg = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        if let Some(line) = e.line().filter(|l| *l > 1) {
            msg.push_str(&format!(" (line {line} of the template)"));
        }
        EvalError(msg)
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

impl CompiledText {
    /// Compiles a template field (`{{ }}` interpolations; one whole `{{ expr }}`
    /// keeps its type).
    pub fn template(env: Env, text: &str) -> Result<CompiledText, EvalError> {
        let full = CompiledText::compile_template(env, text)?;
        Ok(match SimpleText::parse(text) {
            Some(simple) if !matches!(full, CompiledText::Literal(_)) => {
                CompiledText::Simple(simple, Box::new(full))
            }
            _ => full,
        })
    }

    fn compile_template(env: Env, text: &str) -> Result<CompiledText, EvalError> {
        Ok(match classify(text) {
            TextKind::Literal => CompiledText::Literal(text.to_string()),
            TextKind::Expression(inner) => CompiledText::Expr(
                Arc::new(env.compile_expression(leak(inner))?),
                text.to_string(),
            ),
            TextKind::Template => CompiledText::Template(
                Arc::new(env.template_from_str(leak(text))?),
                text.to_string(),
            ),
        })
    }

    /// Compiles an expression field (a `{{ }}` wrapper is tolerated).
    pub fn expression(env: Env, text: &str) -> Result<CompiledText, EvalError> {
        let inner = strip_braces(text);
        let full = CompiledText::Expr(
            Arc::new(env.compile_expression(leak(inner))?),
            text.to_string(),
        );
        // A plain variable path (`from: referral`) can be read straight on JSON.
        Ok(match SimpleText::parse(&format!("{{{{{inner}}}}}")) {
            Some(simple) if matches!(simple.parts.as_slice(), [SimplePart::Path(_)]) => {
                CompiledText::Simple(simple, Box::new(full))
            }
            _ => full,
        })
    }

    /// The variable the text is, when it is just one (`{{ referral }}`,
    /// `from: referral`): its value is that variable's, unchanged.
    pub fn variable(&self) -> Option<&str> {
        match self {
            CompiledText::Simple(simple, _) => match simple.parts.as_slice() {
                [SimplePart::Path(path)] if path.len() == 1 => Some(&path[0]),
                _ => None,
            },
            _ => None,
        }
    }

    /// The source text.
    pub fn source(&self) -> &str {
        match self {
            CompiledText::Literal(s) | CompiledText::Expr(_, s) | CompiledText::Template(_, s) => s,
            CompiledText::Simple(_, full) => full.source(),
        }
    }

    /// Evaluates straight on JSON variables when the text is simple (literal text
    /// and `{{ a.b }}` paths to text or integers); `None` means "use [`Self::eval`]".
    /// The mapping engine's hot path: no template context is built.
    pub fn eval_json(&self, vars: &[(&str, &Value)]) -> Option<Value> {
        self.eval_json_in(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
    }

    /// Like [`Self::eval_json`], with the JSON variables found by `var` (the
    /// interpreter's [`Scope::get_json`]).
    pub fn eval_json_in<'v>(&self, var: impl Fn(&str) -> Option<&'v Value>) -> Option<Value> {
        match self {
            CompiledText::Literal(s) => Some(Value::String(s.clone())),
            CompiledText::Simple(simple, _) => simple.eval(var),
            _ => None,
        }
    }

    /// Evaluates to a JSON value.
    pub fn eval(&self, scope: &minijinja::Value) -> Result<Value, EvalError> {
        match self {
            CompiledText::Literal(s) => Ok(Value::String(s.clone())),
            CompiledText::Expr(e, _) => to_json(&e.eval(scope.clone())?),
            CompiledText::Template(t, _) => Ok(Value::String(t.render(scope.clone())?)),
            CompiledText::Simple(_, full) => full.eval(scope),
        }
    }

    /// Evaluates like [`Self::eval`], simple texts straight on the JSON variables
    /// `var` finds (the same result without going through minijinja).
    pub fn eval_in<'v>(
        &self,
        scope: &minijinja::Value,
        var: &dyn Fn(&str) -> Option<&'v Value>,
    ) -> Result<Value, EvalError> {
        match self.eval_json_in(var) {
            Some(v) => Ok(v),
            None => self.eval(scope),
        }
    }

    /// Evaluates to a minijinja value (conditions).
    pub fn eval_raw(&self, scope: &minijinja::Value) -> Result<minijinja::Value, EvalError> {
        match self {
            CompiledText::Literal(s) => Ok(minijinja::Value::from(s.as_str())),
            CompiledText::Expr(e, _) => Ok(e.eval(scope.clone())?),
            CompiledText::Template(t, _) => Ok(minijinja::Value::from(t.render(scope.clone())?)),
            CompiledText::Simple(_, full) => full.eval_raw(scope),
        }
    }

    /// Evaluates and takes the truth value (Jinja truthiness: empty is false).
    pub fn truthy(&self, scope: &minijinja::Value) -> Result<bool, EvalError> {
        Ok(self.eval_raw(scope)?.is_true())
    }
}

/// A JSON value whose strings are compiled templates (`values:`, `with:`, ...).
#[derive(Debug, Clone)]
pub enum CompiledValue {
    /// A non-string scalar.
    Scalar(Value),
    /// A string.
    Text(CompiledText),
    /// A list.
    List(Vec<CompiledValue>),
    /// A mapping.
    Map(Vec<(String, CompiledValue)>),
}

impl CompiledValue {
    /// Compiles every string inside `v` as a template.
    pub fn compile(env: Env, v: &Value) -> Result<CompiledValue, EvalError> {
        Ok(match v {
            Value::String(s) => CompiledValue::Text(CompiledText::template(env, s)?),
            Value::Array(items) => CompiledValue::List(
                items
                    .iter()
                    .map(|i| CompiledValue::compile(env, i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => CompiledValue::Map(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), CompiledValue::compile(env, v)?)))
                    .collect::<Result<_, EvalError>>()?,
            ),
            other => CompiledValue::Scalar(other.clone()),
        })
    }

    /// Evaluates every template inside.
    pub fn eval(&self, scope: &minijinja::Value) -> Result<Value, EvalError> {
        self.eval_in(scope, &|_| None)
    }

    /// Evaluates every template inside, simple ones straight on the JSON
    /// variables `var` finds (see [`CompiledText::eval_in`]).
    pub fn eval_in<'v>(
        &self,
        scope: &minijinja::Value,
        var: &dyn Fn(&str) -> Option<&'v Value>,
    ) -> Result<Value, EvalError> {
        Ok(match self {
            CompiledValue::Scalar(v) => v.clone(),
            CompiledValue::Text(t) => t.eval_in(scope, var)?,
            CompiledValue::List(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.eval_in(scope, var))
                    .collect::<Result<_, _>>()?,
            ),
            CompiledValue::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    map.insert(k.clone(), v.eval_in(scope, var)?);
                }
                Value::Object(map)
            }
        })
    }
}

/// minijinja value → JSON (undefined becomes null).
pub fn to_json(v: &minijinja::Value) -> Result<Value, EvalError> {
    if v.is_undefined() {
        return Ok(Value::Null);
    }
    // A JSON document seen through a view is that document: copy it instead of
    // walking it through the object protocol (same result, see `JsonView`).
    if let Some(view) = v.downcast_object_ref::<JsonView>() {
        return Ok(view.node().clone());
    }
    serde_json::to_value(v)
        .map_err(|e| EvalError(format!("the value cannot be represented as JSON: {e}")))
}

/// JSON → minijinja value.
pub fn from_json(v: &Value) -> minijinja::Value {
    match v {
        Value::Object(_) | Value::Array(_) => view(Arc::new(v.clone())),
        scalar => scalar_to_minijinja(scalar),
    }
}

/// Shared JSON → minijinja value: documents are seen in place, not copied.
pub fn from_shared_json(v: &Arc<Value>) -> minijinja::Value {
    match &**v {
        Value::Object(_) | Value::Array(_) => view(v.clone()),
        scalar => scalar_to_minijinja(scalar),
    }
}

fn view(root: Arc<Value>) -> minijinja::Value {
    minijinja::Value::from_object(JsonView { root, path: None })
}

fn scalar_to_minijinja(v: &Value) -> minijinja::Value {
    match v {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => minijinja::Value::from(i),
            (None, Some(u), _) => minijinja::Value::from(u),
            (_, _, Some(f)) => minijinja::Value::from(f),
            _ => minijinja::Value::from(()),
        },
        Value::String(s) => minijinja::Value::from(s.as_str()),
        other => minijinja::Value::from(Serde(other)),
    }
}

/// One step from a JSON container to a child: a key of an object or an index of
/// a list.
#[derive(Debug)]
enum Step {
    Key(Box<str>),
    Index(usize),
}

/// Where a view's node is inside its document: the steps from the root, last
/// step first (children share their parent's path).
#[derive(Debug)]
struct JsonPath {
    parent: Option<Arc<JsonPath>>,
    step: Step,
}

/// The node `path` leads to from `root`.
fn walk<'v>(root: &'v Value, path: Option<&JsonPath>) -> Option<&'v Value> {
    let Some(p) = path else {
        return Some(root);
    };
    let parent = walk(root, p.parent.as_deref())?;
    match &p.step {
        Step::Key(k) => parent.as_object()?.get(&**k),
        Step::Index(i) => parent.as_array()?.get(*i),
    }
}

/// A JSON document seen by templates without converting it: objects and lists
/// are looked into on demand (a template reading `record.id` of a large referral
/// touches one field, not the whole record). Serializing a view gives back the
/// JSON it shows, which [`to_json`] relies on.
#[derive(Debug)]
struct JsonView {
    root: Arc<Value>,
    path: Option<Arc<JsonPath>>,
}

impl JsonView {
    fn node(&self) -> &Value {
        walk(&self.root, self.path.as_deref()).unwrap_or(&Value::Null)
    }

    /// The child `child` of this view's node, reached by `step`.
    fn child(&self, child: &Value, step: Step) -> minijinja::Value {
        match child {
            Value::Object(_) | Value::Array(_) => minijinja::Value::from_object(JsonView {
                root: self.root.clone(),
                path: Some(Arc::new(JsonPath {
                    parent: self.path.clone(),
                    step,
                })),
            }),
            scalar => scalar_to_minijinja(scalar),
        }
    }
}

impl Object for JsonView {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        match self.node() {
            Value::Array(_) => minijinja::value::ObjectRepr::Seq,
            _ => minijinja::value::ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        match self.node() {
            Value::Array(items) => {
                let i = key.as_i64()?;
                let i = if i < 0 { items.len() as i64 + i } else { i };
                let i = usize::try_from(i).ok()?;
                Some(self.child(items.get(i)?, Step::Index(i)))
            }
            Value::Object(map) => {
                let k = key.as_str()?;
                Some(self.child(map.get(k)?, Step::Key(k.into())))
            }
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        match self.node() {
            Value::Array(items) => minijinja::value::Enumerator::Seq(items.len()),
            Value::Object(map) => minijinja::value::Enumerator::Values(
                map.keys()
                    .map(|k| minijinja::Value::from(k.as_str()))
                    .collect(),
            ),
            _ => minijinja::value::Enumerator::Empty,
        }
    }
}

/// One variable: its template value, and the JSON it was set from (shared with
/// the template value's view of it).
#[derive(Debug, Clone)]
struct Var {
    json: Option<Arc<Value>>,
    value: minijinja::Value,
}

/// Variables visible to templates: a name → value list in the order they were
/// first set, looked up lazily. Cloning a scope and taking it as a template
/// context are cheap: the list is shared and copied (shallowly) only when a
/// clone is changed.
#[derive(Debug, Default, Clone)]
pub struct Scope {
    vars: Arc<Vec<(Arc<str>, Var)>>,
}

impl Scope {
    /// An empty scope.
    pub fn new() -> Scope {
        Scope::default()
    }

    /// Sets a variable from JSON.
    pub fn set_json(&mut self, name: &str, v: &Value) {
        self.set_shared_json(name, Arc::new(v.clone()));
    }

    /// Sets a variable from shared JSON (templates see it without a copy).
    pub fn set_shared_json(&mut self, name: &str, v: Arc<Value>) {
        let value = from_shared_json(&v);
        self.put(
            name,
            Var {
                json: Some(v),
                value,
            },
        );
    }

    /// Sets a variable.
    pub fn set(&mut self, name: &str, v: minijinja::Value) {
        self.put(
            name,
            Var {
                json: None,
                value: v,
            },
        );
    }

    fn put(&mut self, name: &str, var: Var) {
        let vars = Arc::make_mut(&mut self.vars);
        match vars.iter_mut().find(|(n, _)| &**n == name) {
            Some((_, slot)) => *slot = var,
            None => vars.push((name.into(), var)),
        }
    }

    /// Reads a variable.
    pub fn get(&self, name: &str) -> Option<&minijinja::Value> {
        self.find(name).map(|v| &v.value)
    }

    /// Reads a variable set from JSON, as that JSON.
    pub fn get_json(&self, name: &str) -> Option<&Arc<Value>> {
        self.find(name).and_then(|v| v.json.as_ref())
    }

    fn find(&self, name: &str) -> Option<&Var> {
        self.vars.iter().find(|(n, _)| &**n == name).map(|(_, v)| v)
    }

    /// The variables set from JSON, in the order they were first set.
    pub fn json_vars(&self) -> impl Iterator<Item = (&str, &Arc<Value>)> {
        self.vars
            .iter()
            .filter_map(|(n, v)| Some((&**n, v.json.as_ref()?)))
    }

    /// The scope as a template context.
    pub fn to_value(&self) -> minijinja::Value {
        minijinja::Value::from_object(ScopeObject(self.vars.clone()))
    }
}

#[derive(Debug)]
struct ScopeObject(Arc<Vec<(Arc<str>, Var)>>);

impl Object for ScopeObject {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let key = key.as_str()?;
        self.0
            .iter()
            .find(|(n, _)| &**n == key)
            .map(|(_, v)| v.value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> minijinja::Value {
        let mut s = Scope::new();
        s.set_json(
            "referral",
            &json!({"id": "r1", "details": {"dealValue": 1000.5}, "type": "Shared"}),
        );
        s.set_json("opportunity", &Value::Null);
        s.to_value()
    }

    #[test]
    fn expressions_keep_their_type() {
        let env = leak_env();
        let t = CompiledText::template(env, "{{ referral.details.dealValue * 2 }}").ok();
        assert_eq!(t.and_then(|t| t.eval(&scope()).ok()), Some(json!(2001.0)));
        let t = CompiledText::template(env, "id-{{ referral.id }}").ok();
        assert_eq!(t.and_then(|t| t.eval(&scope()).ok()), Some(json!("id-r1")));
        let c =
            CompiledText::expression(env, "opportunity is none and referral.type == 'Shared'").ok();
        assert_eq!(c.and_then(|c| c.truthy(&scope()).ok()), Some(true));
    }

    #[test]
    fn without_and_only_filter_mappings() {
        let env = leak_env();
        let t = CompiledText::template(env, "{{ referral.details | without('dealValue') }}").ok();
        assert_eq!(t.and_then(|t| t.eval(&scope()).ok()), Some(json!({})));
        let t = CompiledText::template(env, "{{ referral | only('id', 'type') }}").ok();
        assert_eq!(
            t.and_then(|t| t.eval(&scope()).ok()),
            Some(json!({"id": "r1", "type": "Shared"}))
        );
        let t = CompiledText::template(env, "{{ referral.id | without('x') }}").ok();
        assert!(matches!(t.map(|t| t.eval(&scope())), Some(Err(_))));
    }

    #[test]
    fn simple_templates_evaluate_on_json_like_minijinja() {
        let env = leak_env();
        let record = json!({"id": "r1", "n": 5, "f": 1.5, "none": null, "nested": {"a": "x"}});
        let vars = [("record", &record)];
        let mut s = Scope::new();
        s.set_json("record", &record);
        let ctx = s.to_value();
        for text in [
            "https://x/{{ record.id }}/{{ record.n }}",
            "{{ record.nested.a }}",
            "{{ record.id }}",
            "{{ record.f }}",
            "a {{ record.f }}",
            "{{ record.none }}",
            "{{ record.missing }}",
        ] {
            let t = CompiledText::template(env, text).unwrap_or_else(|e| panic!("{e}"));
            let slow = t.eval(&ctx).ok();
            if let Some(fast) = t.eval_json(&vars) {
                assert_eq!(Some(fast), slow, "{text}");
            }
        }
        let t = CompiledText::template(env, "x-{{ record.id }}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.eval_json(&vars), Some(json!("x-r1")));
        // not simple: falls back
        let t = CompiledText::template(env, "{{ record.id | upper }}")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.eval_json(&vars), None);
    }

    #[test]
    fn views_and_shared_scopes_give_the_json_they_show() {
        let env = leak_env();
        let record = json!({
            "id": "r1", "n": 5, "big": 18446744073709551615u64, "f": 1.5, "none": null,
            "list": [1, {"a": "x"}, [true]], "nested": {"a": "x", "~/k": {"b": []}}
        });
        let mut s = Scope::new();
        s.set_shared_json("record", Arc::new(record.clone()));
        s.set_json("other", &json!("o"));
        let snapshot = s.clone();
        s.set_json("other", &json!(2));
        assert_eq!(snapshot.get_json("other").map(|v| &**v), Some(&json!("o")));
        let ctx = s.to_value();
        let var = |name: &str| s.get_json(name).map(|v| &**v);
        for (text, want) in [
            ("{{ record }}", record.clone()),
            ("{{ record.nested }}", record["nested"].clone()),
            ("{{ record.list }}", record["list"].clone()),
            ("{{ record.list[1] }}", json!({"a": "x"})),
            ("{{ record.list[-1] }}", json!([true])),
            ("{{ record.nested['~/k'] }}", json!({"b": []})),
            ("{{ record.big }}", record["big"].clone()),
            ("{{ record.f }}", json!(1.5)),
            ("{{ [record.list[1], record.n] }}", json!([{"a": "x"}, 5])),
            ("{{ other }}", json!(2)),
            ("{{ record.id }}-{{ other }}", json!("r1-2")),
        ] {
            let t = CompiledText::template(env, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(t.eval(&ctx).ok(), Some(want.clone()), "{text}");
            assert_eq!(t.eval_in(&ctx, &var).ok(), Some(want), "{text}");
        }
        for (text, want) in [("record", record.clone()), ("record.nested.a", json!("x"))] {
            let e = CompiledText::expression(env, text).unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(e, CompiledText::Simple(..)), "{text}");
            assert_eq!(e.eval_in(&ctx, &var).ok(), Some(want.clone()), "{text}");
            assert_eq!(e.eval(&ctx).ok(), Some(want), "{text}");
        }
        let none = CompiledText::expression(env, "none").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(none, CompiledText::Expr(..)));
        let missing = CompiledText::expression(env, "record.missing");
        let missing = missing.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(missing.eval_in(&ctx, &var), missing.eval(&ctx));
    }

    #[test]
    fn errors_are_values_not_panics() {
        let env = leak_env();
        for bad in [
            "{{ missing.x }}",
            "{{ 1 / 0 }}",
            "{% for i in range(100000000) %}{{ i }}{% endfor %}",
        ] {
            let t = CompiledText::template(env, bad).ok();
            let r = t.map(|t| t.eval(&scope()));
            assert!(matches!(r, Some(Err(_))), "{bad}: {r:?}");
        }
    }
}
