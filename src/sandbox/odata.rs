//! OData v4 query options shared by Partner Center and Dataverse: a `$filter` parser
//! and evaluator (comparisons, `and`/`or`/`not`, parentheses, string functions,
//! `any`/`all` lambdas) and `$orderby`.
//!
//! Literals: `'text'` (`''` escapes a quote), numbers, `true`/`false`/`null`, bare GUIDs,
//! bare date-times (`2024-01-01T00:00:00Z`) and dates (`2024-01-01`).

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::stamp;

/// A literal value in a filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Guid(String),
    DateTime(DateTime<Utc>),
    Date(NaiveDate),
}

/// A value-producing part of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    /// A property path (`status`, `customerProfile/address/country`, `t/email`).
    Path(Vec<String>),
    Literal(Literal),
    /// `tolower(x)`, `toupper(x)`, `trim(x)`.
    Call(String, Box<Operand>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A parsed `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare(Operand, CmpOp, Operand),
    /// `contains`, `startswith`, `endswith`.
    Text(String, Operand, Operand),
    /// `path/any(v: body)` (`any: true`) or `path/all(v: body)`; `any()` has no body.
    Lambda {
        any: bool,
        path: Vec<String>,
        var: String,
        body: Option<Box<Filter>>,
    },
    /// A bare boolean property.
    Truthy(Operand),
}

/// A property path used by a filter, for validation by the service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathUse {
    /// Absolute path (lambda variables replaced by their collection).
    pub(crate) path: Vec<String>,
    /// True for the collection of a lambda.
    pub(crate) collection: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Comma,
    Colon,
    Word(String),
    Text(String),
    Literal(Literal),
}

fn is_guid(text: &[u8]) -> bool {
    text.len() >= 36
        && text[..36].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
        && text.get(36).is_none_or(|c| !c.is_ascii_alphanumeric())
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if matches!(c, b'(' | b')' | b',' | b':') {
            tokens.push(match c {
                b'(' => Token::Open,
                b')' => Token::Close,
                b',' => Token::Comma,
                _ => Token::Colon,
            });
            i += 1;
        } else if c == b'\'' {
            let mut value = String::new();
            let mut j = i + 1;
            loop {
                match text[j..].find('\'') {
                    None => return Err(format!("unterminated string literal at position {i}")),
                    Some(k) => {
                        value.push_str(&text[j..j + k]);
                        j += k + 1;
                        if bytes.get(j) == Some(&b'\'') {
                            value.push('\'');
                            j += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            tokens.push(Token::Text(value));
            i = j;
        } else if is_guid(&bytes[i..]) {
            tokens.push(Token::Literal(Literal::Guid(
                text[i..i + 36].to_ascii_lowercase(),
            )));
            i += 36;
        } else if c.is_ascii_digit()
            || (c == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || matches!(bytes[i], b':' | b'.' | b'+' | b'-'))
            {
                i += 1;
            }
            tokens.push(Token::Literal(number_or_time(&text[start..i])?));
        } else if c.is_ascii_alphabetic() || matches!(c, b'_' | b'$' | b'@') {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || matches!(bytes[i], b'_' | b'/' | b'.' | b'$' | b'@'))
            {
                i += 1;
            }
            tokens.push(Token::Word(text[start..i].to_owned()));
        } else {
            return Err(format!(
                "syntax error at position {i} in '{text}': unexpected character '{}'",
                char::from(c)
            ));
        }
    }
    Ok(tokens)
}

fn number_or_time(text: &str) -> Result<Literal, String> {
    if text.contains('T') {
        return stamp::parse(text)
            .map(Literal::DateTime)
            .ok_or_else(|| format!("'{text}' is not a valid date-time literal"));
    }
    if text.len() == 10 && text.as_bytes()[4] == b'-' {
        return stamp::parse_date(text)
            .map(Literal::Date)
            .ok_or_else(|| format!("'{text}' is not a valid date literal"));
    }
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(Literal::Number)
        .ok_or_else(|| format!("'{text}' is not a valid number literal"))
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

/// Parses a `$filter` expression.
pub(crate) fn parse_filter(text: &str) -> Result<Filter, String> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        position: 0,
    };
    if parser.tokens.is_empty() {
        return Err("the $filter expression is empty".to_owned());
    }
    let filter = parser.or()?;
    match parser.peek() {
        None => Ok(filter),
        Some(token) => Err(format!(
            "syntax error: unexpected {} after a complete expression",
            describe(token)
        )),
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Open => "'('".into(),
        Token::Close => "')'".into(),
        Token::Comma => "','".into(),
        Token::Colon => "':'".into(),
        Token::Word(w) => format!("'{w}'"),
        Token::Text(t) => format!("'{t}' (string)"),
        Token::Literal(l) => format!("literal {l:?}"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    fn expect(&mut self, wanted: &Token) -> Result<(), String> {
        match self.next() {
            Some(ref token) if token == wanted => Ok(()),
            Some(token) => Err(format!(
                "syntax error: expected {}, found {}",
                describe(wanted),
                describe(&token)
            )),
            None => Err(format!(
                "syntax error: expected {} at the end",
                describe(wanted)
            )),
        }
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.position += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.position += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_word("not") {
            self.position += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.position += 1;
            let inner = self.or()?;
            self.expect(&Token::Close)?;
            return Ok(inner);
        }
        let left = match self.term()? {
            Term::Filter(filter) => return Ok(filter),
            Term::Operand(operand) => operand,
        };
        let op = match self.peek() {
            Some(Token::Word(w)) => match w.as_str() {
                "eq" => Some(CmpOp::Eq),
                "ne" => Some(CmpOp::Ne),
                "gt" => Some(CmpOp::Gt),
                "ge" => Some(CmpOp::Ge),
                "lt" => Some(CmpOp::Lt),
                "le" => Some(CmpOp::Le),
                _ => None,
            },
            _ => None,
        };
        let Some(op) = op else {
            return match left {
                Operand::Path(_) => Ok(Filter::Truthy(left)),
                _ => Err(
                    "syntax error: expected a comparison operator (eq, ne, gt, ge, lt, le)".into(),
                ),
            };
        };
        self.position += 1;
        match self.term()? {
            Term::Operand(right) => Ok(Filter::Compare(left, op, right)),
            Term::Filter(_) => Err("syntax error: a boolean function cannot be compared".into()),
        }
    }

    fn term(&mut self) -> Result<Term, String> {
        match self.next() {
            Some(Token::Text(text)) => Ok(Term::Operand(Operand::Literal(Literal::String(text)))),
            Some(Token::Literal(literal)) => Ok(Term::Operand(Operand::Literal(literal))),
            Some(Token::Word(word)) => self.word(word),
            Some(token) => Err(format!("syntax error: unexpected {}", describe(&token))),
            None => Err("syntax error: the expression ends too early".into()),
        }
    }

    fn word(&mut self, word: String) -> Result<Term, String> {
        match word.as_str() {
            "true" => return Ok(Term::Operand(Operand::Literal(Literal::Bool(true)))),
            "false" => return Ok(Term::Operand(Operand::Literal(Literal::Bool(false)))),
            "null" => return Ok(Term::Operand(Operand::Literal(Literal::Null))),
            "eq" | "ne" | "gt" | "ge" | "lt" | "le" | "and" | "or" | "not" => {
                return Err(format!("syntax error: unexpected operator '{word}'"));
            }
            _ => {}
        }
        if self.peek() != Some(&Token::Open) {
            return Ok(Term::Operand(Operand::Path(split_path(&word))));
        }
        self.position += 1;
        if let Some((collection, kind)) = word.rsplit_once('/')
            && (kind == "any" || kind == "all")
        {
            return self.lambda(split_path(collection), kind == "any");
        }
        match word.as_str() {
            "contains" | "startswith" | "endswith" => {
                let left = self.operand()?;
                self.expect(&Token::Comma)?;
                let right = self.operand()?;
                self.expect(&Token::Close)?;
                Ok(Term::Filter(Filter::Text(word, left, right)))
            }
            "tolower" | "toupper" | "trim" => {
                let inner = self.operand()?;
                self.expect(&Token::Close)?;
                Ok(Term::Operand(Operand::Call(word, Box::new(inner))))
            }
            _ => Err(format!("unknown function '{word}'")),
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.term()? {
            Term::Operand(operand) => Ok(operand),
            Term::Filter(_) => {
                Err("syntax error: expected a value, found a boolean function".into())
            }
        }
    }

    fn lambda(&mut self, path: Vec<String>, any: bool) -> Result<Term, String> {
        if self.peek() == Some(&Token::Close) {
            self.position += 1;
            return Ok(Term::Filter(Filter::Lambda {
                any,
                path,
                var: String::new(),
                body: None,
            }));
        }
        let var =
            match self.next() {
                Some(Token::Word(var)) if !var.contains('/') => var,
                _ => return Err(
                    "syntax error: expected a lambda variable, as in team/any(t:t/email eq 'x')"
                        .into(),
                ),
            };
        self.expect(&Token::Colon)?;
        let body = self.or()?;
        self.expect(&Token::Close)?;
        Ok(Term::Filter(Filter::Lambda {
            any,
            path,
            var,
            body: Some(Box::new(body)),
        }))
    }
}

enum Term {
    Operand(Operand),
    Filter(Filter),
}

fn split_path(word: &str) -> Vec<String> {
    word.split('/').map(str::to_owned).collect()
}

impl Filter {
    /// Every property path the filter reads.
    pub(crate) fn paths(&self) -> Vec<PathUse> {
        let mut out = Vec::new();
        self.collect(&[], &mut out);
        out
    }

    fn collect(&self, vars: &[(&str, &[String])], out: &mut Vec<PathUse>) {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.collect(vars, out);
                b.collect(vars, out);
            }
            Filter::Not(a) => a.collect(vars, out),
            Filter::Compare(a, _, b) | Filter::Text(_, a, b) => {
                operand_paths(a, vars, out);
                operand_paths(b, vars, out);
            }
            Filter::Truthy(a) => operand_paths(a, vars, out),
            Filter::Lambda {
                path, var, body, ..
            } => {
                let absolute = absolute(path, vars);
                out.push(PathUse {
                    path: absolute.clone(),
                    collection: true,
                });
                if let Some(body) = body {
                    let mut inner = vars.to_vec();
                    inner.push((var.as_str(), absolute.as_slice()));
                    body.collect(&inner, out);
                }
            }
        }
    }

    /// True when the record passes the filter.
    pub(crate) fn matches(&self, record: &Value, case_insensitive: bool) -> bool {
        self.eval(
            &Scope {
                root: record,
                vars: Vec::new(),
            },
            case_insensitive,
        )
    }

    fn eval(&self, scope: &Scope<'_>, ci: bool) -> bool {
        match self {
            Filter::And(a, b) => a.eval(scope, ci) && b.eval(scope, ci),
            Filter::Or(a, b) => a.eval(scope, ci) || b.eval(scope, ci),
            Filter::Not(a) => !a.eval(scope, ci),
            Filter::Compare(a, op, b) => compare(&scope.value(a), *op, &scope.value(b), ci),
            Filter::Truthy(a) => scope.value(a) == Typed::Bool(true),
            Filter::Text(function, a, b) => match (scope.value(a), scope.value(b)) {
                (Typed::Str(a), Typed::Str(b)) => {
                    let (a, b) = if ci {
                        (a.to_lowercase(), b.to_lowercase())
                    } else {
                        (a, b)
                    };
                    match function.as_str() {
                        "contains" => a.contains(&b),
                        "startswith" => a.starts_with(&b),
                        _ => a.ends_with(&b),
                    }
                }
                _ => false,
            },
            Filter::Lambda {
                any,
                path,
                var,
                body,
            } => {
                let items = match scope.resolve(path) {
                    Some(Value::Array(items)) => items.as_slice(),
                    _ => &[],
                };
                let Some(body) = body else {
                    return !items.is_empty();
                };
                let test = |item: &Value| {
                    let mut vars = scope.vars.clone();
                    vars.push((var.as_str(), item));
                    body.eval(
                        &Scope {
                            root: scope.root,
                            vars,
                        },
                        ci,
                    )
                };
                if *any {
                    items.iter().any(test)
                } else {
                    items.iter().all(test)
                }
            }
        }
    }
}

fn absolute(path: &[String], vars: &[(&str, &[String])]) -> Vec<String> {
    if let Some(first) = path.first()
        && let Some((_, base)) = vars.iter().rev().find(|(v, _)| v == first)
    {
        return base.iter().chain(path[1..].iter()).cloned().collect();
    }
    path.to_vec()
}

fn operand_paths(operand: &Operand, vars: &[(&str, &[String])], out: &mut Vec<PathUse>) {
    match operand {
        Operand::Path(path) => out.push(PathUse {
            path: absolute(path, vars),
            collection: false,
        }),
        Operand::Call(_, inner) => operand_paths(inner, vars, out),
        Operand::Literal(_) => {}
    }
}

struct Scope<'a> {
    root: &'a Value,
    vars: Vec<(&'a str, &'a Value)>,
}

impl<'a> Scope<'a> {
    fn resolve(&self, path: &[String]) -> Option<&'a Value> {
        let (mut current, rest) = match path.first() {
            Some(first) => match self.vars.iter().rev().find(|(v, _)| v == first) {
                Some((_, value)) => (*value, &path[1..]),
                None => (self.root, path),
            },
            None => return None,
        };
        for segment in rest {
            current = current.get(segment.as_str())?;
        }
        Some(current)
    }

    fn value(&self, operand: &Operand) -> Typed {
        match operand {
            Operand::Literal(literal) => Typed::from_literal(literal),
            Operand::Path(path) => self.resolve(path).map_or(Typed::Null, Typed::from_json),
            Operand::Call(function, inner) => match self.value(inner) {
                Typed::Str(s) => Typed::Str(match function.as_str() {
                    "tolower" => s.to_lowercase(),
                    "toupper" => s.to_uppercase(),
                    _ => s.trim().to_owned(),
                }),
                other => other,
            },
        }
    }
}

/// A value ready for comparison.
#[derive(Debug, Clone, PartialEq)]
enum Typed {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Guid(String),
    Time(DateTime<Utc>),
    Date(NaiveDate),
}

impl Typed {
    fn from_literal(literal: &Literal) -> Typed {
        match literal {
            Literal::Null => Typed::Null,
            Literal::Bool(b) => Typed::Bool(*b),
            Literal::Number(n) => Typed::Num(*n),
            Literal::String(s) => Typed::Str(s.clone()),
            Literal::Guid(g) => Typed::Guid(g.clone()),
            Literal::DateTime(t) => Typed::Time(*t),
            Literal::Date(d) => Typed::Date(*d),
        }
    }

    fn from_json(value: &Value) -> Typed {
        match value {
            Value::Bool(b) => Typed::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Typed::Null, Typed::Num),
            Value::String(s) => Typed::Str(s.clone()),
            _ => Typed::Null,
        }
    }
}

/// Orders two values of compatible types; `None` when they cannot be compared.
fn order(a: &Typed, b: &Typed, ci: bool) -> Option<Ordering> {
    match (a, b) {
        (Typed::Null, Typed::Null) => Some(Ordering::Equal),
        (Typed::Null, _) | (_, Typed::Null) => None,
        (Typed::Bool(a), Typed::Bool(b)) => Some(a.cmp(b)),
        (Typed::Num(a), Typed::Num(b)) => a.partial_cmp(b),
        (Typed::Num(a), Typed::Str(b)) => b.parse::<f64>().ok().and_then(|b| a.partial_cmp(&b)),
        (Typed::Str(a), Typed::Num(b)) => a.parse::<f64>().ok().and_then(|a| a.partial_cmp(b)),
        (Typed::Time(a), Typed::Time(b)) => Some(a.cmp(b)),
        (Typed::Str(s), Typed::Time(t)) => stamp::parse(s).map(|s| s.cmp(t)),
        (Typed::Time(t), Typed::Str(s)) => stamp::parse(s).map(|s| t.cmp(&s)),
        (Typed::Date(a), Typed::Date(b)) => Some(a.cmp(b)),
        (Typed::Str(s), Typed::Date(d)) => stamp::parse(s).map(|s| s.date_naive().cmp(d)),
        (Typed::Date(d), Typed::Str(s)) => stamp::parse(s).map(|s| d.cmp(&s.date_naive())),
        (Typed::Guid(a), Typed::Str(b)) | (Typed::Str(b), Typed::Guid(a)) => {
            Some(a.to_lowercase().cmp(&b.to_lowercase()))
        }
        (Typed::Guid(a), Typed::Guid(b)) => Some(a.cmp(b)),
        (Typed::Str(a), Typed::Str(b)) if ci => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Typed::Str(a), Typed::Str(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn compare(a: &Typed, op: CmpOp, b: &Typed, ci: bool) -> bool {
    let ordering = order(a, b, ci);
    match op {
        CmpOp::Eq => ordering == Some(Ordering::Equal),
        CmpOp::Ne => ordering != Some(Ordering::Equal),
        CmpOp::Gt => ordering == Some(Ordering::Greater),
        CmpOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        CmpOp::Lt => ordering == Some(Ordering::Less),
        CmpOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
    }
}

/// One `$orderby` key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderKey {
    pub(crate) path: Vec<String>,
    pub(crate) descending: bool,
}

/// Parses `$orderby` (`field [asc|desc], …`).
pub(crate) fn parse_orderby(text: &str) -> Result<Vec<OrderKey>, String> {
    let mut keys = Vec::new();
    for item in text.split(',') {
        let mut words = item.split_whitespace();
        let Some(field) = words.next() else {
            return Err(format!("invalid $orderby '{text}'"));
        };
        let descending = match words.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(format!("invalid $orderby direction '{other}'")),
        };
        if words.next().is_some() {
            return Err(format!("invalid $orderby '{text}'"));
        }
        keys.push(OrderKey {
            path: split_path(field),
            descending,
        });
    }
    Ok(keys)
}

/// Orders two records by the keys (nulls first in ascending order).
pub(crate) fn compare_records(a: &Value, b: &Value, keys: &[OrderKey], ci: bool) -> Ordering {
    for key in keys {
        let get = |record: &Value| {
            let mut current = record;
            for segment in &key.path {
                match current.get(segment.as_str()) {
                    Some(next) => current = next,
                    None => return Typed::Null,
                }
            }
            Typed::from_json(current)
        };
        let (x, y) = (get(a), get(b));
        let ordering = match (&x, &y) {
            (Typed::Null, Typed::Null) => Ordering::Equal,
            (Typed::Null, _) => Ordering::Less,
            (_, Typed::Null) => Ordering::Greater,
            _ => order(&x, &y, ci).unwrap_or(Ordering::Equal),
        };
        let ordering = if key.descending {
            ordering.reverse()
        } else {
            ordering
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// Splits `$select` into field names.
pub(crate) fn parse_select(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(filter: &str, record: &Value) -> bool {
        parse_filter(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(record, false)
    }

    #[test]
    fn documented_examples_evaluate() {
        let referral = json!({
            "direction": "Incoming", "substatus": "Pending", "status": "New",
            "updatedDateTime": "2024-05-01T10:00:00.1234567Z",
            "customerProfile": {"address": {"country": "US"}},
            "team": [{"email": "a@b.com"}, {"email": "x@y.com"}],
            "details": {"dealValue": 100.5},
        });
        assert!(check(
            "(direction eq 'Incoming' and substatus eq 'Pending')",
            &referral
        ));
        assert!(check("team/any(t:t/email eq 'x@y.com')", &referral));
        assert!(!check("team/all(t:t/email eq 'x@y.com')", &referral));
        assert!(check("updatedDateTime gt 2024-04-30T00:00:00Z", &referral));
        assert!(check(
            "customerProfile/address/country eq 'US' or status eq 'Closed'",
            &referral
        ));
        assert!(check(
            "not (status eq 'Closed') and details/dealValue ge 100",
            &referral
        ));
        assert!(check("contains(tolower(direction), 'incom')", &referral));
        assert!(check("externalReferenceId eq null", &referral));
    }

    #[test]
    fn guids_and_quotes_tokenize() {
        let record = json!({"_parentaccountid_value": "AB5E1C1D-0000-4000-8000-000000000001", "name": "O'Brien"});
        assert!(check(
            "_parentaccountid_value eq ab5e1c1d-0000-4000-8000-000000000001",
            &record
        ));
        assert!(check("name eq 'O''Brien'", &record));
    }

    #[test]
    fn invalid_filters_are_errors() {
        for bad in [
            "status eq",
            "status eq 'x",
            "(status eq 'x'",
            "status foo 'x'",
            "eq 'x'",
            "",
            "frob(x)",
            "a eq 2024-13-45",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn paths_resolve_lambda_variables() {
        let filter = parse_filter("team/any(t:t/email eq 'x') and status eq 'New'")
            .unwrap_or_else(|e| panic!("{e}"));
        let paths: Vec<String> = filter.paths().iter().map(|p| p.path.join("/")).collect();
        assert_eq!(paths, ["team", "team/email", "status"]);
    }

    proptest::proptest! {
        #[test]
        fn filters_never_panic(text in "\\PC{0,60}") {
            if let Ok(filter) = parse_filter(&text) {
                let _ = filter.paths();
                let _ = filter.matches(&json!({"a": [{"b": 1}], "c": "x"}), true);
            }
        }

        #[test]
        fn filter_like_input_never_panics(text in "[a-z/()' :,0-9TZ.-]{0,60}( eq | and | or |any|all)?[a-z/()' :,0-9TZ.-]{0,40}") {
            let _ = parse_filter(&text);
            let _ = parse_orderby(&text);
        }
    }
}
