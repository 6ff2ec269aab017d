//! A SOQL subset: `SELECT f1, Parent.f2 | COUNT() FROM Obj [WHERE cond] [ORDER BY f
//! [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]`, with `=`, `!=`, `<>`, `<`, `>`,
//! `<=`, `>=`, `LIKE`, `IN`, `NOT IN`, `AND`, `OR`, `NOT` and parentheses; literals:
//! quoted strings, numbers, `true`/`false`/`null`, unquoted dates and date-times, and
//! `TODAY`, `YESTERDAY`, `TOMORROW`, `LAST_N_DAYS:n`, `NEXT_N_DAYS:n`. Filter values are
//! type-checked against the fields as Salesforce does.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::ids;
use super::schema::{self, Field, SObject, Type};
use crate::sandbox::error::ApiError;
use crate::sandbox::stamp;

use super::record::bad;

/// A selected or filtered field: on the queried object, or on a parent.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Column {
    Field(&'static Field),
    Parent {
        relationship: &'static str,
        reference: &'static Field,
        target: &'static SObject,
        field: &'static Field,
    },
}

impl Column {
    /// The field whose type the column has.
    pub(crate) fn field(&self) -> &'static Field {
        match self {
            Column::Field(f) | Column::Parent { field: f, .. } => f,
        }
    }
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    /// A date literal like `TODAY`: [start, end) in days.
    Days(NaiveDate, NaiveDate),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// A `WHERE` condition.
#[derive(Debug, Clone)]
pub(crate) enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Compare(Column, Op, Literal),
    Like(Column, String),
    In(Column, Vec<Literal>, bool),
}

/// An `ORDER BY` key.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub(crate) column: Column,
    pub(crate) descending: bool,
    pub(crate) nulls_last: bool,
}

/// A parsed query.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub(crate) sobject: &'static SObject,
    pub(crate) columns: Vec<Column>,
    pub(crate) count: bool,
    pub(crate) condition: Option<Condition>,
    pub(crate) order: Vec<Order>,
    pub(crate) limit: Option<usize>,
    pub(crate) offset: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Literal(Literal),
    Op(Op),
    Open,
    Close,
    Comma,
}

/// A MALFORMED_QUERY (or other code) error pointing at a position of the query.
fn error(query: &str, position: usize, code: &str, message: &str) -> ApiError {
    let caret = format!("{}^", " ".repeat(position));
    bad(
        code,
        format!(
            "\n{query}\n{caret}\nERROR at Row:1:Column:{}\n{message}",
            position + 1
        ),
        &[],
    )
}

fn tokenize(query: &str) -> Result<Vec<(Token, usize)>, ApiError> {
    let bytes = query.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let token = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => Token::Open,
            b')' => Token::Close,
            b',' => Token::Comma,
            b'=' => Token::Op(Op::Eq),
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 1;
                Token::Op(Op::Ne)
            }
            b'<' | b'>' => {
                let next = bytes.get(i + 1).copied();
                let (op, skip) = match (c, next) {
                    (b'<', Some(b'>')) => (Op::Ne, 1),
                    (b'<', Some(b'=')) => (Op::Le, 1),
                    (b'>', Some(b'=')) => (Op::Ge, 1),
                    (b'<', _) => (Op::Lt, 0),
                    _ => (Op::Gt, 0),
                };
                i += skip;
                Token::Op(op)
            }
            b'\'' => {
                let mut value = String::new();
                let mut chars = query[i + 1..].char_indices();
                let mut closed = None;
                while let Some((offset, ch)) = chars.next() {
                    match ch {
                        '\\' => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, 't')) => value.push('\t'),
                            Some((_, other)) => value.push(other),
                            None => break,
                        },
                        '\'' => {
                            closed = Some(i + 1 + offset);
                            break;
                        }
                        other => value.push(other),
                    }
                }
                let Some(end) = closed else {
                    return Err(error(
                        query,
                        start,
                        "MALFORMED_QUERY",
                        "unexpected end of query: unterminated string",
                    ));
                };
                i = end;
                Token::Text(value)
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                while i + 1 < bytes.len()
                    && (bytes[i + 1].is_ascii_alphanumeric()
                        || matches!(bytes[i + 1], b':' | b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
                let text = &query[start..=i];
                Token::Literal(number_or_date(text).ok_or_else(|| {
                    error(
                        query,
                        start,
                        "MALFORMED_QUERY",
                        &format!("unexpected token: '{text}'"),
                    )
                })?)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i + 1 < bytes.len()
                    && (bytes[i + 1].is_ascii_alphanumeric()
                        || matches!(bytes[i + 1], b'_' | b'.' | b':'))
                {
                    i += 1;
                }
                Token::Word(query[start..=i].to_owned())
            }
            _ => {
                let ch = query[i..].chars().next().unwrap_or('?');
                return Err(error(
                    query,
                    start,
                    "MALFORMED_QUERY",
                    &format!("unexpected token: '{ch}'"),
                ));
            }
        };
        tokens.push((token, start));
        i += 1;
    }
    Ok(tokens)
}

fn number_or_date(text: &str) -> Option<Literal> {
    if text.contains('T') {
        let has_zone = text.ends_with('Z') || text[text.find('T')?..].contains(['+', '-']);
        return has_zone
            .then(|| stamp::parse(text))
            .flatten()
            .map(Literal::DateTime);
    }
    if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
        return stamp::parse_date(text).map(Literal::Date);
    }
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(Literal::Number)
}

fn date_literal(word: &str) -> Option<Literal> {
    let today = Utc::now().date_naive();
    let upper = word.to_ascii_uppercase();
    let day = Duration::days(1);
    let (start, end) = match upper.as_str() {
        "TODAY" => (today, today + day),
        "YESTERDAY" => (today - day, today),
        "TOMORROW" => (today + day, today + day + day),
        _ => {
            let (name, n) = upper.split_once(':')?;
            let n: i64 = n.parse().ok().filter(|n| (0..=36_500).contains(n))?;
            match name {
                "LAST_N_DAYS" => (today - Duration::days(n), today + day),
                "NEXT_N_DAYS" => (today, today + Duration::days(n + 1)),
                _ => return None,
            }
        }
    };
    Some(Literal::Days(start, end))
}

struct Parser<'q> {
    query: &'q str,
    tokens: Vec<(Token, usize)>,
    position: usize,
    sobject: Option<&'static SObject>,
}

/// Parses a SOQL query.
pub(crate) fn parse(query: &str) -> Result<Query, ApiError> {
    let mut parser = Parser {
        query,
        tokens: tokenize(query)?,
        position: 0,
        sobject: None,
    };
    parser.query()
}

impl Parser<'_> {
    fn at(&self) -> usize {
        self.tokens
            .get(self.position)
            .map_or(self.query.len(), |(_, p)| *p)
    }

    fn fail(&self, message: &str) -> ApiError {
        error(self.query, self.at(), "MALFORMED_QUERY", message)
    }

    fn unexpected(&self) -> ApiError {
        match self.tokens.get(self.position) {
            None => self.fail("unexpected end of query"),
            Some((Token::Word(w), _)) => self.fail(&format!("unexpected token: '{w}'")),
            Some((Token::Text(t), _)) => self.fail(&format!("unexpected token: '{t}'")),
            Some(_) => self.fail("unexpected token"),
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        match self.tokens.get(self.position) {
            Some((Token::Word(w), _)) if w.eq_ignore_ascii_case(word) => {
                self.position += 1;
                true
            }
            _ => false,
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), ApiError> {
        if self.keyword(word) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn token(&mut self, token: &Token) -> bool {
        if self.tokens.get(self.position).map(|(t, _)| t) == Some(token) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> Result<(String, usize), ApiError> {
        match self.tokens.get(self.position) {
            Some((Token::Word(w), p)) => {
                let out = (w.clone(), *p);
                self.position += 1;
                Ok(out)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn query(&mut self) -> Result<Query, ApiError> {
        self.expect_keyword("SELECT")?;
        let mut raw = Vec::new();
        let mut count = false;
        if matches!(self.tokens.get(self.position), Some((Token::Word(w), _)) if w.eq_ignore_ascii_case("COUNT"))
            && self.tokens.get(self.position + 1).map(|(t, _)| t) == Some(&Token::Open)
        {
            self.position += 2;
            if !self.token(&Token::Close) {
                return Err(self.fail("COUNT() takes no field in the sandbox"));
            }
            count = true;
        } else {
            loop {
                raw.push(self.word()?);
                if !self.token(&Token::Comma) {
                    break;
                }
            }
        }
        self.expect_keyword("FROM")?;
        let (name, at) = self.word()?;
        let sobject = schema::by_name(&name).ok_or_else(|| {
            error(
                self.query,
                at,
                "INVALID_TYPE",
                &format!("sObject type '{name}' is not supported."),
            )
        })?;
        self.sobject = Some(sobject);
        let columns = raw
            .iter()
            .map(|(name, at)| self.column(name, *at))
            .collect::<Result<Vec<_>, _>>()?;
        let condition = if self.keyword("WHERE") {
            Some(self.or()?)
        } else {
            None
        };
        let mut order = Vec::new();
        if self.keyword("ORDER") {
            self.expect_keyword("BY")?;
            loop {
                let (name, at) = self.word()?;
                let column = self.column(&name, at)?;
                let descending = self.keyword("DESC");
                if !descending {
                    self.keyword("ASC");
                }
                let nulls_last = if self.keyword("NULLS") {
                    if self.keyword("LAST") {
                        true
                    } else {
                        self.expect_keyword("FIRST").map(|()| false)?
                    }
                } else {
                    descending
                };
                order.push(Order {
                    column,
                    descending,
                    nulls_last,
                });
                if !self.token(&Token::Comma) {
                    break;
                }
            }
        }
        let limit = if self.keyword("LIMIT") {
            Some(self.count_value()?)
        } else {
            None
        };
        let offset = if self.keyword("OFFSET") {
            Some(self.count_value()?)
        } else {
            None
        };
        if self.position < self.tokens.len() {
            return Err(self.unexpected());
        }
        if offset.is_some_and(|o| o > 2000) {
            return Err(bad(
                "NUMBER_OUTSIDE_VALID_RANGE",
                "Maximum SOQL offset allowed is 2000",
                &[],
            ));
        }
        Ok(Query {
            sobject,
            columns,
            count,
            condition,
            order,
            limit,
            offset,
        })
    }

    fn count_value(&mut self) -> Result<usize, ApiError> {
        match self.tokens.get(self.position) {
            Some((Token::Literal(Literal::Number(n)), _)) if *n >= 0.0 && n.fract() == 0.0 => {
                self.position += 1;
                Ok(*n as usize)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn column(&self, name: &str, at: usize) -> Result<Column, ApiError> {
        let Some(sobject) = self.sobject else {
            return Err(self.fail("unexpected field"));
        };
        let no_column = |name: &str, on: &str| {
            error(
                self.query,
                at,
                "INVALID_FIELD",
                &format!(
                    "No such column '{name}' on entity '{on}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
                ),
            )
        };
        if let Some((relationship, field_name)) = name.split_once('.') {
            let (reference, target) = sobject.relationship(relationship).ok_or_else(|| {
                error(
                    self.query,
                    at,
                    "INVALID_FIELD",
                    &format!("Didn't understand relationship '{relationship}' in field path."),
                )
            })?;
            let target = schema::by_name(target).ok_or_else(|| no_column(field_name, target))?;
            let field = target
                .field(field_name)
                .ok_or_else(|| no_column(field_name, target.name))?;
            let Type::Reference(_, relationship) = reference.kind else {
                return Err(no_column(name, sobject.name));
            };
            return Ok(Column::Parent {
                relationship,
                reference,
                target,
                field,
            });
        }
        sobject
            .field(name)
            .map(Column::Field)
            .ok_or_else(|| no_column(name, sobject.name))
    }

    fn or(&mut self) -> Result<Condition, ApiError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, ApiError> {
        let mut left = self.unary()?;
        while self.keyword("AND") {
            left = Condition::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Condition, ApiError> {
        if self.keyword("NOT") {
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        if self.token(&Token::Open) {
            let inner = self.or()?;
            if !self.token(&Token::Close) {
                return Err(self.unexpected());
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Condition, ApiError> {
        let (name, at) = self.word()?;
        let column = self.column(&name, at)?;
        let field = column.field();
        if matches!(field.kind, Type::TextArea(n) if n > 255) {
            return Err(error(
                self.query,
                at,
                "INVALID_FIELD",
                &format!("field '{}' can not be filtered in a query call", field.name),
            ));
        }
        if self.keyword("LIKE") {
            let at = self.at();
            return match self.literal()? {
                Literal::Text(pattern) if is_text(field.kind) => {
                    Ok(Condition::Like(column, pattern))
                }
                _ => Err(error(
                    self.query,
                    at,
                    "INVALID_QUERY_FILTER_OPERATOR",
                    &format!("invalid operator on {} field: LIKE", field.name),
                )),
            };
        }
        let negated = self.keyword("NOT");
        if self.keyword("IN") {
            if !self.token(&Token::Open) {
                return Err(self.unexpected());
            }
            let mut values = Vec::new();
            loop {
                let at = self.at();
                let value = self.literal()?;
                values.push(check(self.query, at, field, value)?);
                if !self.token(&Token::Comma) {
                    break;
                }
            }
            if !self.token(&Token::Close) {
                return Err(self.unexpected());
            }
            return Ok(Condition::In(column, values, negated));
        }
        if negated {
            return Err(self.unexpected());
        }
        let op = match self.tokens.get(self.position) {
            Some((Token::Op(op), _)) => *op,
            _ => return Err(self.unexpected()),
        };
        self.position += 1;
        let at = self.at();
        let value = self.literal()?;
        Ok(Condition::Compare(
            column,
            op,
            check(self.query, at, field, value)?,
        ))
    }

    fn literal(&mut self) -> Result<Literal, ApiError> {
        let literal = match self.tokens.get(self.position) {
            Some((Token::Text(t), _)) => Literal::Text(t.clone()),
            Some((Token::Literal(l), _)) => l.clone(),
            Some((Token::Word(w), _)) => match w.to_ascii_lowercase().as_str() {
                "null" => Literal::Null,
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                _ => date_literal(w).ok_or_else(|| self.unexpected())?,
            },
            _ => return Err(self.unexpected()),
        };
        self.position += 1;
        Ok(literal)
    }
}

fn is_text(kind: Type) -> bool {
    matches!(
        kind,
        Type::String(_)
            | Type::TextArea(_)
            | Type::Url(_)
            | Type::Email(_)
            | Type::Phone(_)
            | Type::Picklist(..)
            | Type::Id
            | Type::Reference(..)
    )
}

/// Checks a filter value against the field's type, as Salesforce does.
fn check(query: &str, at: usize, field: &Field, value: Literal) -> Result<Literal, ApiError> {
    let wrong = |kind: &str, quoted: bool| {
        let quotes = if quoted {
            "should be enclosed in quotes"
        } else {
            "should not be enclosed in quotes"
        };
        error(
            query,
            at,
            "INVALID_QUERY_FILTER_OPERATOR",
            &format!(
                "value of filter criterion for field '{}' must be of type {kind} and {quotes}",
                field.name
            ),
        )
    };
    match (field.kind, value) {
        (_, Literal::Null) => Ok(Literal::Null),
        (Type::Date, v @ (Literal::Date(_) | Literal::Days(..))) => Ok(v),
        (Type::Date, _) => Err(wrong("date", false)),
        (Type::DateTime, v @ (Literal::DateTime(_) | Literal::Days(..))) => Ok(v),
        (Type::DateTime, _) => Err(wrong("dateTime", false)),
        (Type::Boolean, v @ Literal::Bool(_)) => Ok(v),
        (Type::Boolean, _) => Err(wrong("boolean", false)),
        (Type::Currency | Type::Percent | Type::Int, v @ Literal::Number(_)) => Ok(v),
        (Type::Currency | Type::Percent | Type::Int, _) => Err(wrong("double", false)),
        (Type::Id | Type::Reference(..), Literal::Text(t)) => {
            Ok(Literal::Text(ids::normalize(&t).unwrap_or(t)))
        }
        (_, v @ Literal::Text(_)) => Ok(v),
        _ => Err(wrong("string", true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_subset() {
        let query = parse(
            "SELECT Id, Name, Account.Name FROM Opportunity WHERE (StageName = 'Closed Won' OR Amount >= 1000) AND SystemModstamp > 2024-01-01T00:00:00Z AND Name LIKE 'Co%' AND StageName NOT IN ('Prospecting') ORDER BY SystemModstamp DESC, Id LIMIT 10 OFFSET 5",
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(query.columns.len(), 3);
        assert_eq!(query.limit, Some(10));
        assert!(query.order[0].descending);
        assert!(parse("SELECT COUNT() FROM Account").is_ok_and(|q| q.count));
    }

    #[test]
    fn errors_use_salesforce_codes() {
        let code = |q: &str| parse(q).err().map(|e| e.code).unwrap_or_default();
        assert_eq!(code("SELECT Foo FROM Opportunity"), "INVALID_FIELD");
        assert_eq!(code("SELECT Id FROM Nope"), "INVALID_TYPE");
        assert_eq!(code("SELECT Id FROM Opportunity WHERE"), "MALFORMED_QUERY");
        assert_eq!(code("SELECT Id Opportunity"), "MALFORMED_QUERY");
        assert_eq!(
            code("SELECT Id FROM Opportunity WHERE CloseDate = '2024-01-01'"),
            "INVALID_QUERY_FILTER_OPERATOR"
        );
        assert_eq!(
            code("SELECT Id FROM Opportunity WHERE Name = 5"),
            "INVALID_QUERY_FILTER_OPERATOR"
        );
        assert_eq!(
            code("SELECT Id FROM Opportunity WHERE Description = 'x'"),
            "INVALID_FIELD"
        );
        assert_eq!(
            code("SELECT Id FROM Opportunity WHERE Name = 'x"),
            "MALFORMED_QUERY"
        );
    }

    proptest::proptest! {
        #[test]
        fn queries_never_panic(text in "\\PC{0,80}") {
            let _ = parse(&text);
        }

        #[test]
        fn query_like_input_never_panics(tail in "[A-Za-z_.' ()=<>!,%0-9:TZ+-]{0,60}") {
            let _ = parse(&format!("SELECT Id, Name FROM Opportunity WHERE {tail}"));
            let _ = parse(&format!("SELECT {tail} FROM Account"));
        }
    }
}
