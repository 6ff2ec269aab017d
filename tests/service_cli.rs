//! The service commands through the real binary: `cosync runs`, `replay`,
//! `conflicts` on state files filled through the library, and `sync --full`
//! (with and without `--dry-run`) against the embedded sandbox on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cosync::mapping::{Base, RowValues};
use cosync::record::RunRecord;
use cosync::store::{EventState, NewEvent, Store};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary from the crate root, with `COSYNC_SANDBOX` only when given.
fn cosync_with(args: &[&str], sandbox: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cosync"));
    cmd.args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("COSYNC_SANDBOX")
        .env_remove("COSYNC_LOG");
    if let Some(line) = sandbox {
        cmd.env("COSYNC_SANDBOX", line);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run cosync: {e}"))
}

fn cosync(args: &[&str]) -> Output {
    cosync_with(args, None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

fn path_str(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {}", p.display()))
}

fn open(path: &Path) -> Store {
    Store::open(path).unwrap_or_else(|e| panic!("{e}"))
}

/// A run record with fixed ids and times.
fn fixed_record(run_id: &str, flow: &str, started_at: &str, status: &str) -> RunRecord {
    serde_json::from_value(json!({
        "run_id": run_id,
        "flow": flow,
        "trigger": {"record_id": "opp-1", "record": {}, "change": "updated"},
        "status": status,
        "dry_run": false,
        "started_at": started_at,
        "duration_ms": 42,
        "steps": [
            {"seq": 0, "index": 0, "id": "opportunity", "name": "Get the opportunity", "kind": "get", "depth": 0, "status": "succeeded", "duration_ms": 3},
            {"seq": 1, "index": 1, "id": "updated", "name": "Update a referral with opportunity data", "kind": "update", "depth": 0, "status": "succeeded", "duration_ms": 30}
        ],
        "writes": [
            {"step": "updated", "connector": "partner_center", "entity": "referral", "action": "update", "key": "ref-1", "fields": {"/details/dealValue": 300000}, "before": {"/details/dealValue": 250000}, "planned": false}
        ],
        "calls": []
    }))
    .unwrap_or_else(|e| panic!("run record: {e}"))
}

#[test]
fn runs_list_and_show_read_the_stored_history() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state.db");
    let store = open(&state);
    let older = fixed_record(
        "01900000-0000-7000-8000-000000000001",
        "dynamics365-to-partner-center",
        "2026-01-02T03:04:05.000Z",
        "succeeded",
    );
    let newer = fixed_record(
        "01900000-0000-7000-8000-000000000002",
        "salesforce-to-partner-center",
        "2026-01-02T03:05:00.000Z",
        "failed",
    );
    store
        .save_run(&older, Some(7))
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .save_run(&newer, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let s = path_str(&state);

    let list = cosync(&["runs", "list", "--state", s]);
    assert_eq!(code(&list), Some(0), "{}", stderr(&list));
    insta::assert_snapshot!("runs_list", stdout(&list));

    let limited = json_of(&cosync(&[
        "runs", "list", "--state", s, "--limit", "1", "--format", "json",
    ]));
    assert_eq!(
        limited["runs"]
            .as_array()
            .map(|r| r.iter().map(|r| r["run_id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("01900000-0000-7000-8000-000000000002")])
    );

    // By id prefix, rendered like `cosync run`.
    let show = cosync(&[
        "runs",
        "show",
        "01900000-0000-7000-8000-000000000001",
        "--state",
        s,
    ]);
    assert_eq!(code(&show), Some(0), "{}", stderr(&show));
    insta::assert_snapshot!("runs_show", stdout(&show));

    let unknown = cosync(&["runs", "show", "no-such-run", "--state", s]);
    assert_eq!(code(&unknown), Some(1));
    assert!(
        stderr(&unknown).contains("no run `no-such-run`"),
        "{}",
        stderr(&unknown)
    );

    let missing = cosync(&[
        "runs",
        "list",
        "--state",
        path_str(&dir.path().join("none.db")),
    ]);
    assert_eq!(code(&missing), Some(2));
    assert!(
        stderr(&missing).contains("no state file"),
        "{}",
        stderr(&missing)
    );
    assert!(!dir.path().join("none.db").exists());
}

#[test]
fn runs_show_renders_a_record_made_by_cosync_run() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let referral: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("mappings/tests/fixtures/referral-new-shared.json"))
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let id = referral["id"].as_str().unwrap_or_default().to_string();
    let fixtures = dir.path().join("fixtures.json");
    let event = dir.path().join("event.json");
    std::fs::write(
        &fixtures,
        json!({"partner_center": {"referral": [referral]}}).to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&event, json!({"EventName": "referral-created", "ResourceUri": format!("https://api.partner.microsoft.com/engagements/v1/referrals/{id}")}).to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    // In memory the Dynamics 365 currency lookup finds nothing: a failed run,
    // which is a run record like any other.
    let ran = cosync(&[
        "run",
        "partner-center-to-dynamics365",
        "--event",
        path_str(&event),
        "--fixtures",
        path_str(&fixtures),
        "-p",
        "mappings",
        "--format",
        "json",
    ]);
    let record: RunRecord = serde_json::from_slice(&ran.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&ran), stderr(&ran)));
    let state = dir.path().join("state.db");
    open(&state)
        .save_run(&record, Some(1))
        .unwrap_or_else(|e| panic!("{e}"));
    let s = path_str(&state);
    let shown = json_of(&cosync(&[
        "runs",
        "show",
        &record.run_id,
        "--state",
        s,
        "--format",
        "json",
    ]));
    assert_eq!(shown, serde_json::to_value(&record).unwrap_or_default());
    let human = cosync(&["runs", "show", &record.run_id[..13], "--state", s]);
    assert_eq!(code(&human), Some(0), "{}", stderr(&human));
    assert_eq!(stdout(&human), cosync::record::human(&record));
    let list = stdout(&cosync(&["runs", "list", "--state", s]));
    assert!(
        list.contains(&record.run_id) && list.contains("partner-center-to-dynamics365"),
        "{list}"
    );
}

/// Stores events for three records and makes the first two dead letters.
fn dead_letters(store: &Store) {
    for (n, flow) in [
        "partner-center-to-dynamics365",
        "dynamics365-to-partner-center",
        "partner-center-to-salesforce",
    ]
    .iter()
    .enumerate()
    {
        store
            .enqueue(&NewEvent {
                source: "partner_center".into(),
                record_key: format!("referral:r-{n}"),
                dedupe_key: format!("d-{n}"),
                flow: Some((*flow).to_string()),
                payload: json!({"EventName": "referral-updated", "ResourceUri": format!("https://api.partner.microsoft.com/engagements/v1/referrals/r-{n}")}),
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let claimed = store.claim(10).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(claimed.len(), 3);
    for e in &claimed {
        if e.id == 3 {
            store
                .complete(e.id, Some("run-3"))
                .unwrap_or_else(|e| panic!("{e}"));
        } else {
            store
                .fail(
                    e.id,
                    &format!("HTTP 503 from the CRM (event {})", e.id),
                    None,
                    None,
                )
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn replay_requeues_dead_letters_only() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state.db");
    let store = open(&state);
    dead_letters(&store);
    let s = path_str(&state);

    let done = cosync(&["replay", "3", "--state", s]);
    assert_eq!(code(&done), Some(1));
    assert!(
        stderr(&done).contains("event 3 is done (processed), not a dead letter"),
        "{}",
        stderr(&done)
    );
    let unknown = cosync(&["replay", "99", "--state", s]);
    assert_eq!(code(&unknown), Some(1));
    assert!(
        stderr(&unknown).contains("no event with id 99"),
        "{}",
        stderr(&unknown)
    );

    let one = cosync(&["replay", "1", "--state", s]);
    assert_eq!(code(&one), Some(0), "{}", stderr(&one));
    insta::assert_snapshot!("replay_one", stdout(&one));
    let event = store.event(1).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        event.map(|e| (e.state, e.attempts)),
        Some((EventState::Queued, 0))
    );

    // Now queued: not a dead letter any more.
    let again = cosync(&["replay", "1", "--state", s]);
    assert_eq!(code(&again), Some(1));
    assert!(
        stderr(&again).contains("event 1 is queued"),
        "{}",
        stderr(&again)
    );

    let all = json_of(&cosync(&[
        "replay", "--all", "--state", s, "--format", "json",
    ]));
    assert_eq!(all["replayed"], 1);
    assert_eq!(all["ids"], json!([2]));
    assert_eq!(all["events"][0]["flow"], "dynamics365-to-partner-center");
    assert_eq!(
        all["events"][0]["last_error"],
        "HTTP 503 from the CRM (event 2)"
    );
    assert!(
        store
            .events(EventState::Dead, 10)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );

    let none = cosync(&["replay", "--all", "--state", s]);
    assert_eq!(code(&none), Some(0));
    assert_eq!(stdout(&none), "no dead letters: nothing to replay\n");
}

fn park(
    store: &Store,
    referral: &str,
    crm: &str,
    field: &str,
    pc: Value,
    crm_value: Value,
    base: Option<RowValues>,
) -> i64 {
    store
        .park_conflict(
            "referral-opportunity-dynamics365",
            referral,
            Some(crm),
            &cosync::mapping::Conflict {
                label: field.into(),
                partner_center: pc,
                crm: crm_value,
                base,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn conflicts_list_and_resolve_queue_the_flow_toward_the_losing_side() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("state.db");
    let store = open(&state);
    // ref-1 was synced at 180000 on both sides; then both sides changed it.
    let synced = |v: Value| RowValues {
        partner_center: v.clone(),
        crm: v,
    };
    let base: Base = [
        ("Deal value".to_string(), synced(json!(180000))),
        ("Name".to_string(), synced(json!("Contoso"))),
    ]
    .into_iter()
    .collect();
    store
        .save_link(
            "referral-opportunity-dynamics365",
            "ref-1",
            Some("opp-1"),
            &base,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        park(
            &store,
            "ref-1",
            "opp-1",
            "Deal value",
            json!(250000),
            json!(200000),
            Some(synced(json!(180000)))
        ),
        1
    );
    assert_eq!(
        park(
            &store,
            "ref-2",
            "opp-2",
            "Closing date",
            json!("2026-09-30"),
            json!("2026-10-31"),
            None
        ),
        2
    );
    let s = path_str(&state);
    let times = [(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "[time]")];

    let list = cosync(&["conflicts", "list", "--state", s]);
    assert_eq!(code(&list), Some(0), "{}", stderr(&list));
    insta::with_settings!({filters => times.to_vec()}, {
        insta::assert_snapshot!("conflicts_list", stdout(&list));
    });

    let take_pc = cosync(&[
        "conflicts",
        "resolve",
        "1",
        "--take",
        "partner_center",
        "-p",
        "mappings",
        "--state",
        s,
    ]);
    assert_eq!(code(&take_pc), Some(0), "{}", stderr(&take_pc));
    insta::assert_snapshot!("conflicts_resolve_partner_center", stdout(&take_pc));
    let queued = store
        .events(EventState::Queued, 10)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(queued.len(), 1);
    assert_eq!(
        queued[0].flow.as_deref(),
        Some("partner-center-to-dynamics365")
    );
    assert_eq!(queued[0].record_key, "referral:ref-1");
    assert_eq!(queued[0].payload["EventName"], "referral-updated");
    // The CRM's value now counts as synced: the next merge sees only Partner
    // Center changed and writes 250000 to the CRM.
    let link = store
        .link_by_referral("referral-opportunity-dynamics365", "ref-1")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("the link is gone"));
    assert_eq!(
        link.base.get("Deal value"),
        Some(&RowValues {
            partner_center: json!(180000),
            crm: json!(200000)
        })
    );
    assert_eq!(link.base.get("Name"), Some(&synced(json!("Contoso"))));
    assert!(
        queued[0].payload["ResourceUri"]
            .as_str()
            .is_some_and(|u| u.ends_with("/referrals/ref-1"))
    );

    let take_crm = json_of(&cosync(&[
        "conflicts",
        "resolve",
        "2",
        "--take",
        "crm",
        "-p",
        "mappings",
        "--state",
        s,
        "--format",
        "json",
    ]));
    assert_eq!(take_crm["take"], "crm");
    assert_eq!(take_crm["link_base_updated"], false);
    assert_eq!(take_crm["conflict"]["resolution"], "crm");
    assert_eq!(
        take_crm["queued"][0]["flow"],
        "dynamics365-to-partner-center"
    );
    assert_eq!(
        take_crm["queued"][0]["record_key"],
        "dynamics365:opportunity:opp-2"
    );
    assert_eq!(take_crm["queued"][0]["payload"]["record_id"], "opp-2");

    let twice = cosync(&[
        "conflicts",
        "resolve",
        "1",
        "--take",
        "crm",
        "-p",
        "mappings",
        "--state",
        s,
    ]);
    assert_eq!(code(&twice), Some(1));
    assert!(
        stderr(&twice).contains("already resolved"),
        "{}",
        stderr(&twice)
    );
    let unknown = cosync(&[
        "conflicts",
        "resolve",
        "42",
        "--take",
        "crm",
        "-p",
        "mappings",
        "--state",
        s,
    ]);
    assert_eq!(code(&unknown), Some(1));
    assert!(
        stderr(&unknown).contains("no conflict with id 42"),
        "{}",
        stderr(&unknown)
    );

    let open_now = cosync(&["conflicts", "list", "--state", s]);
    assert_eq!(
        stdout(&open_now),
        "no open conflicts (`--all` shows resolved ones too)\n"
    );
    let all = json_of(&cosync(&[
        "conflicts",
        "list",
        "--all",
        "--state",
        s,
        "--format",
        "json",
    ]));
    let resolutions: Vec<Value> = all["conflicts"]
        .as_array()
        .map(|c| c.iter().map(|c| c["resolution"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(resolutions, vec![json!("partner_center"), json!("crm")]);
}

/// Writes a seed folder with one new shared referral of this partner.
fn seed(dir: &Path) -> PathBuf {
    let mut referral: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("mappings/tests/fixtures/referral-new-shared.json"))
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    if let Some(r) = referral.as_object_mut() {
        // Another organisation's ids make it a related referral.
        r.remove("organizationId");
        r.remove("organizationName");
    }
    let seeds = dir.join("seed");
    std::fs::create_dir_all(&seeds).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        seeds.join("referrals.json"),
        json!({"partner_center": {"referrals": [referral]}}).to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    seeds
}

async fn sandbox_writes(admin: &str) -> Vec<Value> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    http.get(format!("{admin}/_sandbox/writes"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json::<Vec<Value>>()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn run_async(args: Vec<String>, sandbox: String) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cosync_with(&args, Some(&sandbox))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_full_dry_run_writes_nothing_and_sync_full_creates_the_opportunities() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let handle = cosync::sandbox::start(cosync::sandbox::SandboxConfig {
        seed_dir: Some(seed(dir.path())),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let line = serde_json::to_string(handle.urls()).unwrap_or_else(|e| panic!("{e}"));
    let admin = handle.urls().admin.clone();
    let state = dir.path().join("state.db");
    let s = path_str(&state).to_string();

    let no_full = run_async(args(&["sync", "-p", "mappings"]), line.clone()).await;
    assert_eq!(code(&no_full), Some(2));

    let dry = run_async(
        args(&[
            "sync",
            "--full",
            "--dry-run",
            "-p",
            "mappings",
            "--state",
            &s,
        ]),
        line.clone(),
    )
    .await;
    assert_eq!(code(&dry), Some(0), "{}{}", stdout(&dry), stderr(&dry));
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[now]"),
    ]}, {
        insta::assert_snapshot!("sync_full_dry_run", stdout(&dry));
    });
    let report = json_of(
        &run_async(
            args(&[
                "sync",
                "--full",
                "--dry-run",
                "-p",
                "mappings",
                "--format",
                "json",
            ]),
            line.clone(),
        )
        .await,
    );
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["totals"]["created"], 2, "{report:#}");
    let d365 = &report["flows"][0];
    assert_eq!(d365["flow"], "partner-center-to-dynamics365");
    let writes = d365["created"][0]["writes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let opportunity = writes
        .iter()
        .find(|w| w["entity"] == "opportunity")
        .unwrap_or_else(|| panic!("no planned opportunity: {report:#}"));
    assert_eq!(opportunity["action"], "create");
    assert_eq!(opportunity["planned"], true);
    assert!(
        opportunity["changes"]
            .as_array()
            .is_some_and(|c| c
                .iter()
                .any(|c| c["field"] == "name"
                    && c["after"] == "Contoso - Azure data platform migration")),
        "{opportunity:#}"
    );
    assert_eq!(sandbox_writes(&admin).await, Vec::<Value>::new());
    assert!(!state.exists(), "a dry run opened the state");

    let real = run_async(
        args(&["sync", "--full", "-p", "mappings", "--state", &s]),
        line.clone(),
    )
    .await;
    assert_eq!(code(&real), Some(0), "{}{}", stdout(&real), stderr(&real));
    let created: Vec<String> = sandbox_writes(&admin)
        .await
        .iter()
        .filter(|w| w["method"] == "POST")
        .map(|w| w["path"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        created.iter().any(|p| p.ends_with("/opportunities")),
        "{created:?}"
    );
    assert!(
        created.iter().any(|p| p.ends_with("/sobjects/Opportunity")),
        "{created:?}"
    );
    let runs = open(&state).runs(10).unwrap_or_else(|e| panic!("{e}"));
    let mut flows: Vec<&str> = runs.iter().map(|r| r.flow.as_str()).collect();
    flows.sort_unstable();
    assert_eq!(
        flows,
        [
            "partner-center-to-dynamics365",
            "partner-center-to-salesforce"
        ]
    );
    assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");

    // Reconciled: a second pass finds nothing to create or update in either
    // direction (the new opportunities are listed and run to Partner Center).
    let again = json_of(
        &run_async(
            args(&[
                "sync",
                "--full",
                "--dry-run",
                "-p",
                "mappings",
                "--format",
                "json",
            ]),
            line.clone(),
        )
        .await,
    );
    assert_eq!(again["totals"]["created"], 0, "{again:#}");
    assert_eq!(again["totals"]["updated"], 0, "{again:#}");
    assert_eq!(again["totals"]["failed"], 0, "{again:#}");
    assert_eq!(again["totals"]["runs"], 4, "{again:#}");

    // A real second pass records the links' sync bases (the service's next runs
    // merge three-way against them) and writes nothing.
    let seq = sandbox_writes(&admin).await.len();
    let second = run_async(
        args(&["sync", "--full", "-p", "mappings", "--state", &s]),
        line.clone(),
    )
    .await;
    assert_eq!(
        code(&second),
        Some(0),
        "{}{}",
        stdout(&second),
        stderr(&second)
    );
    assert_eq!(sandbox_writes(&admin).await.len(), seq, "nothing to write");
    let store = open(&state);
    for mapping in [
        "referral-opportunity-dynamics365",
        "referral-opportunity-salesforce",
    ] {
        let links = store.links(mapping).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(links.len(), 1, "{mapping}: {links:?}");
        assert!(links[0].crm_id.is_some(), "{links:?}");
        assert!(
            links[0].base.contains_key("Deal value"),
            "{mapping}: {:?}",
            links[0].base.keys().collect::<Vec<_>>()
        );
    }
    handle.shutdown().await;
}
