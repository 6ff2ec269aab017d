//! Every file in `tests/fixtures/validate/*.yaml` holds one mistake. Each is
//! validated together with the valid base project in `_base/` (so references
//! resolve; a fixture that is a project file replaces `_base/cosync.yaml`), and its diagnostics — code, line:col, message, help — are
//! snapshotted. A fixture must produce at least one error, all of them in itself.

use std::path::{Path, PathBuf};

use cosync::source::Loader;

fn render(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validate");
    let base = root.join("_base");
    // A fixture that is itself a project file replaces the base's `cosync.yaml`.
    let is_project =
        std::fs::read_to_string(path).is_ok_and(|t| t.lines().any(|l| l.starts_with("project:")));
    let mut paths: Vec<PathBuf> = if is_project {
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
    } else {
        vec![base]
    };
    paths.push(path.to_path_buf());
    let outcome = match Loader::new().load(&paths) {
        Ok(o) => o,
        Err(e) => return format!("load error: {e}\n"),
    };
    let (_, diags) = cosync::validate::validate(outcome);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        diags.has_errors(),
        "{name}: expected at least one error, got none"
    );
    let mut out = String::new();
    for d in diags.iter() {
        let file = d.file.as_deref().map(|f| {
            PathBuf::from(f)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        assert_eq!(
            file.as_deref(),
            Some(name.as_str()),
            "{name}: a diagnostic landed outside the fixture: {d:?}"
        );
        let (line, col) = d.span.map_or((0, 0), |s| (s.start.line, s.start.column));
        out.push_str(&format!(
            "{:?} {} {line}:{col} {}\n",
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
    insta::glob!("fixtures/validate/*.yaml", |path| {
        insta::assert_snapshot!(render(path));
    });
}

#[test]
fn base_project_is_valid() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validate/_base");
    let outcome = Loader::new().load(&[base]).map_err(|e| e.to_string());
    let (_, diags) = cosync::validate::validate(outcome.unwrap_or_default());
    assert!(diags.is_empty(), "{diags:?}");
}

#[test]
fn there_are_at_least_forty_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validate");
    let count = std::fs::read_dir(root)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
                .count()
        })
        .unwrap_or(0);
    assert!(count >= 40, "only {count} fixtures");
}
