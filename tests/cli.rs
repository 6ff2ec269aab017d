//! End-to-end tests through the real `cosync` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cosync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cosync"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run cosync: {e}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_is_stable() {
    insta::assert_snapshot!("help", stdout(&cosync(&["--help"])));
    insta::assert_snapshot!("validate_help", stdout(&cosync(&["validate", "--help"])));
    insta::assert_snapshot!("schema_help", stdout(&cosync(&["schema", "--help"])));
}

#[test]
fn the_shipped_solution_validates() {
    let out = cosync(&["validate", "mappings"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("0 errors"), "{}", stdout(&out));
}

#[test]
fn the_base_fixture_project_validates() {
    let out = cosync(&["validate", "tests/fixtures/validate/_base"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

const BROKEN: &str = "tests/fixtures/validate/_base";

fn broken_flow(dir: &Path) -> PathBuf {
    let path = dir.join("broken.yaml");
    let text = "flow: broken\ntrigger: { manual: {} }\nsteps:\n  - get: referral\n    conector: partner_center\n    connector: partner_center\n    entity: referral\n    key: \"{{ trigger.inputs.id }}\"\n";
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

#[test]
fn human_format_shows_the_node_code_and_help() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let flow = broken_flow(dir.path());
    let out = cosync(&[
        "validate",
        BROKEN,
        &flow.to_string_lossy(),
        "--format",
        "human",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out).replace(&dir.path().to_string_lossy().into_owned(), "<tmp>");
    insta::assert_snapshot!("human_unknown_key", text);
}

#[test]
fn json_format_has_every_field() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let flow = broken_flow(dir.path());
    let out = cosync(&[
        "validate",
        BROKEN,
        &flow.to_string_lossy(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    let d = &v[0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["code"], "unknown-key");
    assert_eq!(d["line"], 5);
    assert_eq!(d["column"], 5);
    assert_eq!(d["end_line"], 5);
    assert_eq!(d["end_column"], 13);
    assert_eq!(d["pointer"], "/steps/0/conector");
    assert_eq!(d["help"], "did you mean `connector`?");
    assert!(
        d["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("broken.yaml"))
    );
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.contains("conector"))
    );
}

#[test]
fn github_format_emits_workflow_commands() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let flow = broken_flow(dir.path());
    let out = cosync(&[
        "validate",
        BROKEN,
        &flow.to_string_lossy(),
        "--format",
        "github",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line = stdout(&out);
    assert!(line.starts_with("::error file="), "{line}");
    assert!(line.contains(",line=5,col=5,endLine=5,endColumn=13,title=unknown-key::unknown key `conector`%0Ahelp: did you mean `connector`?"), "{line}");
}

#[test]
fn warnings_alone_exit_zero() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("workflow.yaml"), "name: ci\non: push\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("conn.yaml"),
        "connector: x\nkind: dataverse\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = cosync(&["validate", &dir.path().to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("0 errors, 1 warning"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn usage_and_io_problems_exit_two() {
    let out = cosync(&["validate", "does/not/exist"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("does/not/exist: no such file or directory"),
        "{}",
        stderr(&out)
    );

    let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = cosync(&["validate", &empty.path().to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no cosync files"), "{}", stderr(&out));

    let out = cosync(&["validate", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_ten_megabyte_file_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("huge.yaml");
    let line = "# padding padding padding padding padding padding padding padding padding\n";
    let text = format!(
        "flow: huge\n{}",
        line.repeat(10 * 1024 * 1024 / line.len() + 1)
    );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let out = cosync(&["validate", &path.to_string_lossy(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("\"code\": \"file-too-large\""),
        "{}",
        stdout(&out)
    );
}

#[test]
fn committed_schemas_are_up_to_date() {
    for (name, text) in cosync::cli::schema_cmd::generate() {
        let path = root().join("schemas").join(&name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "schemas/{name} is stale: run `cargo run -- schema` and commit it"
        );
    }
    let out = cosync(&["schema", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn schema_writes_every_kind() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = cosync(&["schema", "--out", &dir.path().to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0));
    for kind in [
        "project",
        "flow",
        "mapping",
        "value-map",
        "connector",
        "test",
    ] {
        let text = std::fs::read_to_string(dir.path().join(format!("{kind}.schema.json")))
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(
            v["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{kind}"
        );
    }
}

#[test]
fn every_shipped_yaml_names_its_schema() {
    let mut files = Vec::new();
    collect(&root().join("mappings"), &mut files);
    assert!(!files.is_empty());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let first = text.lines().next().unwrap_or("");
        let Some(rel) = first.strip_prefix("# yaml-language-server: $schema=") else {
            panic!(
                "{} does not start with a yaml-language-server $schema line",
                f.display()
            );
        };
        let schema = f.parent().map(|p| p.join(rel)).unwrap_or_default();
        assert!(schema.is_file(), "{}: {rel} does not exist", f.display());
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn the_readme_lists_every_diagnostic_code() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap_or_default();
    for code in cosync::diag::Code::ALL {
        assert!(
            readme.contains(&format!("`{}`", code.as_str())),
            "README.md does not document `{}`",
            code.as_str()
        );
    }
}

#[test]
fn the_shipped_flow_tests_pass() {
    let out = cosync(&["test", "mappings", "--format", "json"]);
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let cases = results.as_array().cloned().unwrap_or_default();
    assert!(cases.len() >= 90, "{}", stdout(&out));
    let failed: Vec<String> = cases
        .iter()
        .filter(|c| c["passed"] != true)
        .map(|c| format!("{} / {}: {}", c["suite"], c["case"], c["failures"]))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert_eq!(out.status.code(), Some(0));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
    for e in std::fs::read_dir(from).into_iter().flatten().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn metadata_pulled_from_the_sandbox_checks_mappings_offline() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let project = dir.path().join("project");
    copy_dir(&root().join("mappings"), &project);
    let p = project.to_string_lossy().into_owned();
    let out = cosync(&["metadata", "pull", "-p", &p, "--env", "sandbox"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let snapshot = project.join("metadata/dynamics365.json");
    assert!(snapshot.is_file(), "{}", stdout(&out));
    let out = cosync(&["validate", &p]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // The org loses a field and gains a picklist value: validation says so.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap_or_default())
            .unwrap_or_default();
    let fields = &mut doc["entities"]["opportunity"]["fields"];
    if let Some(f) = fields.as_object_mut() {
        f.remove("estimatedvalue");
    }
    if let Some(values) = fields["cosell_howcanmicrosofthelp"]["values"].as_array_mut() {
        values.push(serde_json::json!(100000099));
    }
    std::fs::write(&snapshot, doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let out = cosync(&["validate", &p, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let diags: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let codes: Vec<(String, String)> = diags
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or("").to_string(),
                d["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        codes
            .iter()
            .any(|(c, m)| c == "unknown-field" && m.contains("estimatedvalue")),
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .any(|(c, m)| c == "value-map-incomplete" && m.contains("100000099")),
        "{codes:?}"
    );
}
