//! The one place diagnostics become text: `human` (source snippet with the node
//! underlined, via miette), `json` and `github` (workflow commands).

use std::collections::HashMap;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource, Report,
};
use serde::Serialize;

use super::{Diagnostic, Diagnostics, Severity};

/// Output formats for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Source snippets with the offending node underlined.
    Human,
    /// A JSON array of diagnostic objects.
    Json,
    /// GitHub Actions workflow commands (`::error file=...`).
    Github,
}

/// Renders diagnostics; `sources` maps file names to their text.
pub fn render(
    diags: &Diagnostics,
    sources: &HashMap<String, String>,
    format: Format,
    color: bool,
) -> String {
    match format {
        Format::Human => human(diags, sources, color),
        Format::Json => json(diags),
        Format::Github => github(diags),
    }
}

/// Human form: one miette report per diagnostic and a summary line.
pub fn human(diags: &Diagnostics, sources: &HashMap<String, String>, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    for d in diags.iter() {
        let report = to_report(d, sources);
        let mut text = String::new();
        if handler.render_report(&mut text, report.as_ref()).is_err() {
            text = format!("{}: {}\n", d.code, d.message);
        }
        out.push_str(&text);
        out.push('\n');
    }
    let (e, w) = (diags.error_count(), diags.warning_count());
    out.push_str(&format!(
        "{} error{}, {} warning{}\n",
        e,
        if e == 1 { "" } else { "s" },
        w,
        if w == 1 { "" } else { "s" }
    ));
    out
}

fn to_report(d: &Diagnostic, sources: &HashMap<String, String>) -> Report {
    let mut m = MietteDiagnostic::new(location_prefix(d) + &d.message)
        .with_code(d.code.as_str())
        .with_severity(match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        });
    if let Some(help) = &d.help {
        m = m.with_help(help.clone());
    }
    let source = d.file.as_ref().and_then(|f| sources.get(f).map(|t| (f, t)));
    match (source, d.span) {
        (Some((name, text)), Some(span)) => {
            let start = span.start.byte.min(text.len());
            // Underline at most to the end of the first line.
            let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            let end = span.end.byte.clamp(start, line_end);
            let len = if end > start {
                end - start
            } else {
                text[start..line_end]
                    .chars()
                    .next()
                    .map_or(0, char::len_utf8)
            };
            m = m.with_label(LabeledSpan::new_primary_with_span(
                Some("here".into()),
                (start, len),
            ));
            Report::new(m).with_source_code(NamedSource::new(name.clone(), text.clone()))
        }
        _ => Report::new(m),
    }
}

fn location_prefix(d: &Diagnostic) -> String {
    match (&d.file, d.span) {
        (Some(f), Some(s)) => format!("{f}:{}:{}: ", s.start.line, s.start.column),
        (Some(f), None) => format!("{f}: "),
        _ => String::new(),
    }
}

/// The JSON form of one diagnostic.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    /// `error` or `warning`.
    pub severity: Severity,
    /// Stable code.
    pub code: &'a str,
    /// Message.
    pub message: &'a str,
    /// File as named by the user.
    pub file: Option<&'a str>,
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column (characters).
    pub column: Option<u32>,
    /// 1-based end line.
    pub end_line: Option<u32>,
    /// 1-based end column (exclusive).
    pub end_column: Option<u32>,
    /// JSON pointer of the node.
    pub pointer: Option<&'a str>,
    /// How to fix it.
    pub help: Option<&'a str>,
}

impl<'a> From<&'a Diagnostic> for JsonDiagnostic<'a> {
    fn from(d: &'a Diagnostic) -> Self {
        JsonDiagnostic {
            severity: d.severity,
            code: d.code.as_str(),
            message: &d.message,
            file: d.file.as_deref(),
            line: d.span.map(|s| s.start.line),
            column: d.span.map(|s| s.start.column),
            end_line: d.span.map(|s| s.end.line),
            end_column: d.span.map(|s| s.end.column),
            pointer: d.pointer.as_deref(),
            help: d.help.as_deref(),
        }
    }
}

/// JSON form: a pretty array.
pub fn json(diags: &Diagnostics) -> String {
    let items: Vec<JsonDiagnostic<'_>> = diags.iter().map(JsonDiagnostic::from).collect();
    let mut s = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

/// GitHub workflow commands, one line per diagnostic.
pub fn github(diags: &Diagnostics) -> String {
    let mut out = String::new();
    for d in diags.iter() {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut props = Vec::new();
        if let Some(f) = &d.file {
            props.push(format!("file={}", escape_property(f)));
        }
        if let Some(s) = d.span {
            props.push(format!("line={}", s.start.line));
            props.push(format!("col={}", s.start.column));
            props.push(format!("endLine={}", s.end.line));
            props.push(format!("endColumn={}", s.end.column));
        }
        props.push(format!("title={}", escape_property(d.code.as_str())));
        let mut message = d.message.clone();
        if let Some(h) = &d.help {
            message.push_str(&format!("\nhelp: {h}"));
        }
        out.push_str(&format!(
            "::{level} {}::{}\n",
            props.join(","),
            escape_data(&message)
        ));
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Code;
    use crate::source::{Pos, Span};

    fn sample() -> (Diagnostics, HashMap<String, String>) {
        let text = "flow: x\nsteps:\n  - get: y\n    conector: pc\n".to_string();
        let start = Pos {
            line: 4,
            column: 5,
            byte: 30,
        };
        let end = Pos {
            line: 4,
            column: 13,
            byte: 38,
        };
        let d = Diagnostic::error(Code::UnknownKey, "unknown key `conector`")
            .in_file("f.yaml")
            .at(Span { start, end })
            .at_pointer("/steps/0/conector")
            .with_help("did you mean `connector`?");
        (
            Diagnostics(vec![d]),
            HashMap::from([("f.yaml".to_string(), text)]),
        )
    }

    #[test]
    fn human_underlines_the_node() {
        let (d, s) = sample();
        let out = human(&d, &s, false);
        assert!(out.contains("f.yaml:4:5: unknown key `conector`"), "{out}");
        assert!(out.contains("conector: pc"), "{out}");
        assert!(out.contains("help: did you mean `connector`?"), "{out}");
        assert!(out.contains("1 error, 0 warnings"), "{out}");
    }

    #[test]
    fn github_escapes() {
        let (d, _) = sample();
        let out = github(&d);
        assert_eq!(
            out,
            "::error file=f.yaml,line=4,col=5,endLine=4,endColumn=13,title=unknown-key::unknown key `conector`%0Ahelp: did you mean `connector`?\n"
        );
    }

    #[test]
    fn json_has_all_fields() {
        let (d, _) = sample();
        let v: serde_json::Value = serde_json::from_str(&json(&d)).unwrap_or_default();
        assert_eq!(v[0]["code"], "unknown-key");
        assert_eq!(v[0]["line"], 4);
        assert_eq!(v[0]["end_column"], 13);
        assert_eq!(v[0]["pointer"], "/steps/0/conector");
    }
}
