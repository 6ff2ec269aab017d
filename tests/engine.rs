//! The interpreter through the real binary: its semantics as a flow test suite
//! (`tests/fixtures/engine`), run records (JSON, snapshot-tested with volatile
//! fields redacted), dry runs, and bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn cosync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cosync"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run cosync: {e}"))
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn interpreter_semantics_suite_passes() {
    let out = cosync(&["test", "tests/fixtures/engine", "--format", "json"]);
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let cases = results.as_array().cloned().unwrap_or_default();
    assert!(cases.len() >= 14, "{}", text(&out.stdout));
    for case in &cases {
        assert_eq!(
            case["passed"], true,
            "{}: {}",
            case["case"], case["failures"]
        );
    }
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_failing_case_exits_one_with_a_readable_diff() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine");
    for f in ["crm.yaml", "flows.yaml"] {
        std::fs::copy(base.join(f), dir.path().join(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    let suite = "test: wrong\nflow: semantics\ncases:\n  - name: expects the wrong total\n    trigger: { inputs: { case: accumulate, items: [1, 2] } }\n    expect:\n      outputs: { total: 4 }\n";
    std::fs::write(dir.path().join("wrong.test.yaml"), suite).unwrap_or_else(|e| panic!("{e}"));
    let out = cosync(&["test", &dir.path().to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("✗ expects the wrong total"), "{stdout}");
    assert!(stdout.contains("- 4") && stdout.contains("+ 3"), "{stdout}");
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = cosync(args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn run_record_json_is_stable() {
    let record = run_json(&[
        "run",
        "pc-to-crm",
        "-p",
        "tests/fixtures/validate/_base",
        "--event",
        "tests/fixtures/run/referral-created.json",
        "--fixtures",
        "tests/fixtures/run/records-update.yaml",
        "--format",
        "json",
    ]);
    insta::assert_json_snapshot!("run_record_update", record, {
        ".run_id" => "[run-id]",
        ".started_at" => "[time]",
        ".duration_ms" => "[ms]",
        ".steps[].duration_ms" => "[ms]",
        ".calls[].duration_ms" => "[ms]",
    });
}

#[test]
fn dry_run_plans_writes_as_a_field_diff() {
    let out = cosync(&[
        "run",
        "pc-to-crm",
        "-p",
        "tests/fixtures/validate/_base",
        "--event",
        "tests/fixtures/run/referral-created.json",
        "--fixtures",
        "tests/fixtures/run/records-update.yaml",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let stable: String = stdout
        .lines()
        .map(|l| {
            let l = match l.find("  (") {
                Some(i) if l.ends_with(" ms)") => &l[..i],
                _ => l,
            };
            if l.starts_with("run ") {
                "run [id] · flow pc-to-crm · succeeded (dry run)".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("dry_run_update", stable);
}

#[test]
fn secrets_in_events_are_redacted_from_run_records() {
    let record = run_json(&[
        "run",
        "semantics",
        "-p",
        "tests/fixtures/engine",
        "--event",
        "tests/fixtures/run/manual-with-token.json",
        "--fixtures",
        "tests/fixtures/run/no-records.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(record["trigger"]["inputs"]["access_token"], "***");
    assert!(!record.to_string().contains("secret.sig"));
    assert_eq!(record["status"], "succeeded");
}

#[test]
fn an_event_that_is_not_json_is_a_usage_error() {
    let out = cosync(&[
        "run",
        "pc-to-crm",
        "-p",
        "tests/fixtures/validate/_base",
        "--event",
        "tests/fixtures/run/not-json.txt",
        "--fixtures",
        "tests/fixtures/run/records-update.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not-json.txt: not valid JSON"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_failed_run_exits_one_and_names_the_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"case": "divide-by-zero"}"#).unwrap_or_else(|e| panic!("{e}"));
    let out = cosync(&[
        "run",
        "semantics",
        "-p",
        "tests/fixtures/engine",
        "--event",
        &event.to_string_lossy(),
        "--fixtures",
        "tests/fixtures/run/no-records.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("failed"), "{stdout}");
    assert!(
        stdout.contains("error [template]: set `broken`:"),
        "{stdout}"
    );
}

#[test]
fn run_against_the_embedded_sandbox_goes_over_http() {
    let record = run_json(&[
        "run",
        "partner-center-to-dynamics365",
        "-p",
        "mappings",
        "--env",
        "sandbox",
        "--event",
        "tests/fixtures/run/sandbox-referral-created.json",
        "--fixtures",
        "tests/fixtures/run/sandbox-referral.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let writes = record["writes"].as_array().cloned().unwrap_or_default();
    let opportunity = writes
        .iter()
        .find(|w| {
            w["connector"] == "dynamics365"
                && w["entity"] == "opportunity"
                && w["action"] == "create"
        })
        .unwrap_or_else(|| panic!("no opportunity created: {record}"));
    assert_eq!(
        opportunity["fields"]["cosell_referralidentifier"],
        "6c1b7f62-1d2a-4b5e-9f00-000000000001"
    );
    assert_eq!(opportunity["fields"]["estimatedvalue"], 25000);
    // the currency lookup was resolved by a query to the sandbox's Dataverse
    assert!(
        opportunity["fields"]["transactioncurrencyid"]
            .as_str()
            .is_some_and(|s| s.len() == 36),
        "{opportunity}"
    );
    assert!(writes.iter().any(|w| w["connector"] == "partner_center"
        && w["action"] == "update"
        && w["fields"]["externalReferenceId"].is_string()));
    // every request went to the sandbox over HTTP
    let calls = record["calls"].as_array().cloned().unwrap_or_default();
    assert!(calls.iter().all(|c| c["ok"] == true), "{calls:?}");
    assert!(calls.len() >= 5);
}
