//! Every `tests/fixtures/validate/err_*.yaml` file (or `err_*/` folder, for
//! mistakes that span files) holds one mistake. Each is validated together with
//! the valid base project in `_base/` (so references resolve; a fixture that is a
//! project file replaces `_base/cosync.yaml`), and its diagnostics — code,
//! line:col, message, help — are snapshotted. A fixture must produce at least one
//! error, all of them in its own files.

use std::path::{Path, PathBuf};

use cosync::source::Loader;

const ROOT: &str = "tests/fixtures/validate";

fn base_files(skip_project: bool) -> Vec<PathBuf> {
    let base = Path::new(ROOT).join("_base");
    if !skip_project {
        return vec![base];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&base)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| !p.ends_with("cosync.yaml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn render(fixture: &Path) -> String {
    // Paths relative to the crate root (the tests' working directory), so messages
    // that name files are the same on every machine.
    let rel = fixture
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(fixture)
        .to_path_buf();
    let is_project =
        std::fs::read_to_string(&rel).is_ok_and(|t| t.lines().any(|l| l.starts_with("project:")));
    let mut paths = base_files(is_project);
    paths.push(rel.clone());
    let outcome = match Loader::new().load(&paths) {
        Ok(o) => o,
        Err(e) => return format!("load error: {e}\n"),
    };
    let (_, diags) = cosync::validate::validate(outcome);
    let name = rel.display().to_string();
    assert!(
        diags.has_errors(),
        "{name}: expected at least one error, got none"
    );
    let mut out = String::new();
    for d in diags.iter() {
        let file = d.file.as_deref().unwrap_or("");
        assert!(
            file.starts_with(&name),
            "{name}: a diagnostic landed outside the fixture: {d:?}"
        );
        let shown = Path::new(file)
            .strip_prefix(ROOT)
            .map_or(file.to_string(), |p| p.display().to_string());
        let (line, col) = d.span.map_or((0, 0), |s| (s.start.line, s.start.column));
        out.push_str(&format!(
            "{:?} {} {shown}:{line}:{col} {}\n",
            d.severity, d.code, d.message
        ));
        if let Some(h) = &d.help {
            out.push_str(&format!("    help: {h}\n"));
        }
    }
    out
}

#[test]
fn validate_fixtures() {
    insta::glob!("fixtures/validate/err_*", |path| {
        insta::assert_snapshot!(render(path));
    });
}

#[test]
fn base_project_is_valid() {
    let outcome = Loader::new()
        .load(&base_files(false))
        .map_err(|e| e.to_string());
    let (_, diags) = cosync::validate::validate(outcome.unwrap_or_default());
    assert!(diags.is_empty(), "{diags:?}");
}

#[test]
fn there_are_at_least_forty_fixtures() {
    let count = std::fs::read_dir(ROOT)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("err_"))
                .count()
        })
        .unwrap_or(0);
    assert!(count >= 40, "only {count} fixtures");
}
