//! Processes and helpers of the end-to-end service tests: `cosync sandbox` and
//! `cosync serve` as separate processes of the real binary (killed when their
//! guard drops), a per-CRM copy of the shipped project, the CLI commands, the
//! state file, and polling with deadlines. Everything talks to 127.0.0.1 only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cosync::demo::{Admin, Crm};
use cosync::store::{EventState, Store};
use serde_json::{Value, json};

/// One test at a time: each runs two processes on a 2-core machine, and some
/// assert on timing ("no write within 1 s").
static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the serial lock for the duration of a test (a failed test does not
/// block the others).
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A multi-threaded runtime for one test.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

/// A child process, killed (SIGKILL) and reaped when dropped.
pub(crate) struct Proc {
    child: Child,
}

impl Proc {
    /// `kill -9`: no chance to finish anything.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code (None when it did not exit within `grace`).
    pub(crate) fn terminate(&mut self, grace: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Starts the binary with `args` and the environment, stderr to `log`; waits
/// for the one JSON line it prints on stdout when ready.
fn spawn(name: &'static str, args: &[&str], env: &[(&str, &str)], log: &Path) -> (Proc, Value) {
    let stderr = std::fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cosync"));
    cmd.args(args)
        .env_remove("COSYNC_SANDBOX")
        .env("NO_COLOR", "1")
        .env("COSYNC_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start cosync {name}: {e}"));
    let stdout = child.stdout.take();
    let proc = Proc { child };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        if let Some(out) = stdout {
            let mut reader = BufReader::new(out);
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep reading so the child never blocks on a full pipe.
            let mut rest = String::new();
            while reader.read_line(&mut rest).is_ok_and(|n| n > 0) {
                rest.clear();
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            panic!(
                "cosync {name} printed no line within 20 s; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
    let value: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| {
        panic!(
            "cosync {name} printed `{line}` ({e}); its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    (proc, value)
}

/// A running `cosync sandbox`.
pub(crate) struct Sandbox {
    /// The process, killed when the test ends.
    _proc: Proc,
    /// Its JSON line (for `COSYNC_SANDBOX`).
    pub(crate) line: String,
    /// The admin URL.
    pub(crate) admin_url: String,
}

impl Sandbox {
    /// Starts `cosync sandbox`, logging to `dir/sandbox.log`.
    pub(crate) fn start(dir: &Path) -> Sandbox {
        let (proc, urls) = spawn("sandbox", &["sandbox"], &[], &dir.join("sandbox.log"));
        let admin_url = urls["admin"]
            .as_str()
            .unwrap_or_else(|| panic!("no admin URL in {urls}"))
            .to_string();
        for (k, v) in urls.as_object().into_iter().flatten() {
            let url = v.as_str().unwrap_or_default();
            assert!(
                url.starts_with("http://127.0.0.1:"),
                "{k} is not on 127.0.0.1: {url}"
            );
        }
        Sandbox {
            _proc: proc,
            line: urls.to_string(),
            admin_url,
        }
    }

    /// A client of its admin API.
    pub(crate) fn admin(&self) -> Admin {
        Admin::new(&self.admin_url).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A running `cosync serve`.
pub(crate) struct Serve {
    /// The process.
    pub(crate) proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// `…/webhooks/partner-center`.
    pub(crate) webhook_url: String,
    /// `…/readyz`.
    pub(crate) ready_url: String,
    /// `…/metrics`.
    pub(crate) metrics_url: String,
    /// The address it listens on, to restart it there.
    pub(crate) listen: String,
}

/// How to start `cosync serve`.
pub(crate) struct ServeOptions<'a> {
    /// The project folder.
    pub(crate) project: &'a Path,
    /// The state file.
    pub(crate) state: &'a Path,
    /// `127.0.0.1:0`, or the address of an earlier run.
    pub(crate) listen: &'a str,
    /// Parallel records.
    pub(crate) workers: usize,
    /// CRM poll interval (`200ms` in most tests).
    pub(crate) poll: &'a str,
    /// stderr goes here.
    pub(crate) log: &'a Path,
}

impl Serve {
    /// Starts `cosync serve` against the sandbox.
    pub(crate) fn start(sandbox: &Sandbox, o: &ServeOptions<'_>) -> Serve {
        let workers = o.workers.to_string();
        let (proc, info) = spawn(
            "serve",
            &[
                "serve",
                "-p",
                path(o.project),
                "--env",
                "sandbox",
                "--listen",
                o.listen,
                "--poll-interval",
                o.poll,
                "--state",
                path(o.state),
                "--workers",
                &workers,
            ],
            &[("COSYNC_SANDBOX", &sandbox.line)],
            o.log,
        );
        let text = |k: &str| {
            info[k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k} in {info}"))
                .to_string()
        };
        let webhook_url = text("webhook_url");
        let base = webhook_url
            .strip_suffix("/webhooks/partner-center")
            .unwrap_or_else(|| panic!("unexpected webhook URL {webhook_url}"))
            .to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let listen = base.trim_start_matches("http://").to_string();
        Serve {
            proc,
            base,
            webhook_url,
            ready_url: text("ready_url"),
            metrics_url: text("metrics_url"),
            listen,
        }
    }

    /// Starts it, registers its webhook URL (overwriting) and returns it.
    pub(crate) fn start_registered(sandbox: &Sandbox, o: &ServeOptions<'_>) -> Serve {
        let serve = Serve::start(sandbox, o);
        register(sandbox, o.project, &serve.webhook_url);
        serve
    }
}

/// A path as text.
pub(crate) fn path(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {}", p.display()))
}

/// Runs `cosync ARGS` to completion (with `COSYNC_SANDBOX` when given).
pub(crate) fn cosync(args: &[&str], sandbox: Option<&Sandbox>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cosync"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("COSYNC_SANDBOX")
        .env_remove("COSYNC_LOG")
        .stdin(Stdio::null());
    if let Some(s) = sandbox {
        cmd.env("COSYNC_SANDBOX", &s.line);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run cosync: {e}"))
}

/// The JSON stdout of a successful command.
pub(crate) fn json_out(o: &Output) -> Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// `cosync webhooks register -p PROJECT --url URL --replace`.
pub(crate) fn register(sandbox: &Sandbox, project: &Path, url: &str) {
    let out = cosync(
        &[
            "webhooks",
            "register",
            "-p",
            path(project),
            "--env",
            "sandbox",
            "--url",
            url,
            "--replace",
            "--format",
            "json",
        ],
        Some(sandbox),
    );
    let v = json_out(&out);
    assert_eq!(v["WebhookUrl"], json!(url), "{v}");
}

/// The shipped project (without its tests) copied to `dir/project`, with the
/// flows of the other CRM disabled and fast service retries; `edit` may change
/// any file (relative path, text) before it is written.
pub(crate) fn project(dir: &Path, crm: Crm, edit: impl Fn(&str, String) -> String) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let dst = dir.join("project");
    let other = match crm {
        Crm::Dynamics365 => "salesforce",
        Crm::Salesforce => "dynamics365",
    };
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let from = src.join(&rel);
        for entry in std::fs::read_dir(&from)
            .unwrap_or_else(|e| panic!("{}: {e}", from.display()))
            .flatten()
        {
            let name = entry.file_name();
            let rel_child = rel.join(&name);
            if entry.path().is_dir() {
                if rel.as_os_str().is_empty() && name == "tests" {
                    continue;
                }
                stack.push(rel_child);
                continue;
            }
            let rel_text = rel_child.to_string_lossy().replace('\\', "/");
            let mut text = std::fs::read_to_string(entry.path())
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            if rel_text.starts_with("flows/") && rel_text.contains(other) {
                assert!(text.contains("\nenabled: true\n"), "{rel_text}");
                text = text.replace("\nenabled: true\n", "\nenabled: false\n");
            }
            if rel_text == "cosync.yaml" {
                let shipped = "retry: { attempts: 8, initial_backoff: 30s, max_backoff: 30m }";
                assert!(text.contains(shipped), "cosync.yaml changed its retry line");
                text = text.replace(
                    shipped,
                    "retry: { attempts: 3, initial_backoff: 200ms, max_backoff: 1s }",
                );
            }
            let text = edit(&rel_text, text);
            let to = dst.join(&rel_child);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(&to, text).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
        }
    }
    dst
}

/// No edit.
pub(crate) fn as_shipped(_: &str, text: String) -> String {
    text
}

/// Opens the state file (read while the service runs: WAL allows it).
pub(crate) fn store(state: &Path) -> Store {
    Store::open(state).unwrap_or_else(|e| panic!("{}: {e}", state.display()))
}

/// Events per state in the state file.
pub(crate) fn counts(state: &Path) -> Counts {
    let all = store(state).counts().unwrap_or_else(|e| panic!("{e}"));
    let of = |s: EventState| all.iter().find(|(x, _)| *x == s).map_or(0, |(_, n)| *n);
    Counts {
        queued: of(EventState::Queued),
        running: of(EventState::Running),
        done: of(EventState::Done),
        dead: of(EventState::Dead),
    }
}

/// Events per state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) queued: u64,
    pub(crate) running: u64,
    pub(crate) done: u64,
    pub(crate) dead: u64,
}

impl Counts {
    /// Every stored event.
    pub(crate) fn total(&self) -> u64 {
        self.queued + self.running + self.done + self.dead
    }
}

/// Polls `check` every 50 ms until it yields a value; panics with `what` and
/// the last observation after `timeout`.
pub(crate) async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let started = Instant::now();
    let mut last = String::from("nothing yet");
    loop {
        match check().await {
            Ok(Some(v)) => return v,
            Ok(None) => {}
            Err(e) => last = e,
        }
        if started.elapsed() > timeout {
            panic!("{what}: not within {timeout:?} (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The service's queue as `/readyz` reports it: (queued, running).
pub(crate) async fn ready(client: &reqwest::Client, ready_url: &str) -> Result<(u64, u64), String> {
    let v: Value = client
        .get(ready_url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let n = |k: &str| {
        v.pointer(&format!("/events/{k}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok((n("queued"), n("running")))
}

/// Waits until the service is idle and stays idle with no new sandbox request
/// for `quiet` (several poll intervals: a change the poller has not seen yet
/// is not "idle").
pub(crate) async fn settle(admin: &Admin, serve: &Serve, quiet: Duration, timeout: Duration) {
    let client = http();
    let started = Instant::now();
    let mut since: Option<(Instant, u64)> = None;
    loop {
        let idle = matches!(ready(&client, &serve.ready_url).await, Ok((0, 0)));
        let last = last_write_seq(admin).await;
        match (idle, since) {
            (true, Some((at, seq))) if seq == last => {
                if at.elapsed() >= quiet {
                    return;
                }
            }
            (true, _) => since = Some((Instant::now(), last)),
            (false, _) => since = None,
        }
        if started.elapsed() > timeout {
            panic!("the service did not settle within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain HTTP client (no proxy: loopback only).
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The sandbox's write log (successful data writes), oldest first.
pub(crate) async fn writes(admin: &Admin) -> Vec<Value> {
    match admin.get("writes").await {
        Ok(Value::Array(a)) => a,
        other => panic!("writes: {other:?}"),
    }
}

/// The sequence number of the newest logged write (0 when none).
pub(crate) async fn last_write_seq(admin: &Admin) -> u64 {
    writes(admin)
        .await
        .last()
        .and_then(|w| w["seq"].as_u64())
        .unwrap_or(0)
}

/// Writes logged after `seq`.
pub(crate) async fn writes_since(admin: &Admin, seq: u64) -> Vec<Value> {
    writes(admin)
        .await
        .into_iter()
        .filter(|w| w["seq"].as_u64().is_some_and(|s| s > seq))
        .collect()
}

/// `METHOD service path` of logged requests, for messages.
pub(crate) fn describe(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|w| {
            format!(
                "{} {} {} {}",
                w["service"].as_str().unwrap_or("?"),
                w["method"].as_str().unwrap_or("?"),
                w["path"].as_str().unwrap_or("?"),
                w["status"]
            )
        })
        .collect()
}

/// The "new deal" Microsoft shares (the shipped fixture without what Partner
/// Center assigns), named `name`.
pub(crate) fn new_deal(name: &str) -> Value {
    cosync::demo::new_deal(name).unwrap_or_else(|e| panic!("{e}"))
}

/// Creates a new deal in Partner Center; its id.
pub(crate) async fn create_referral(admin: &Admin, name: &str) -> String {
    let r = admin
        .post("partner_center/referrals", &new_deal(name))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    r["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no referral id in {r}"))
        .to_string()
}

/// The Dynamics 365 opportunities that carry `referral_id`.
pub(crate) async fn opportunities_of(
    admin: &Admin,
    referral_id: &str,
) -> Result<Vec<Value>, String> {
    admin
        .dataverse(
            "opportunities",
            &format!("cosell_referralidentifier eq '{referral_id}'"),
        )
        .await
}

/// A number at a JSON pointer (numbers or numeric strings).
pub(crate) fn number(v: &Value, pointer: &str) -> Option<f64> {
    match v.pointer(pointer)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A referral shared in Partner Center, synced to a Dynamics 365 opportunity
/// and accepted (so that edits flow both ways); returns (referral id,
/// opportunity id) once the service has settled.
pub(crate) async fn synced_pair(admin: &Admin, serve: &Serve, name: &str) -> (String, String) {
    let referral = create_referral(admin, name).await;
    let opp = wait_for("the opportunity of a new deal", T, || async {
        Ok(opportunities_of(admin, &referral)
            .await?
            .into_iter()
            .next()
            .and_then(|o| o["opportunityid"].as_str().map(str::to_string)))
    })
    .await;
    settle(admin, serve, QUIET, T).await;
    admin
        .patch(
            &format!("partner_center/referrals/{referral}"),
            &json!({"status": "Active", "substatus": "Accepted", "details": {"dealValue": 99000}}),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("the accepted referral in the CRM", T, || async {
        let o = admin
            .get(&format!("dataverse/opportunities({opp})"))
            .await?;
        Ok((number(&o, "/estimatedvalue") == Some(99000.0)
            && number(&o, "/statuscode") != Some(2.0))
        .then_some(()))
    })
    .await;
    settle(admin, serve, QUIET, T).await;
    (referral, opp)
}

/// The usual wait for one sync.
pub(crate) const T: Duration = Duration::from_secs(15);
/// Quiet time that counts as settled (several 200 ms poll intervals).
pub(crate) const QUIET: Duration = Duration::from_millis(700);

/// The CRM → Partner Center flow reads Dataverse through change tracking
/// (delta links) instead of polling by watermark.
pub(crate) fn change_tracking(rel: &str, text: String) -> String {
    if rel != "flows/dynamics365-to-partner-center.yaml" {
        return text;
    }
    assert!(
        text.contains("\n    mode: poll\n"),
        "the trigger's mode changed"
    );
    text.replace("\n    mode: poll\n", "\n    mode: change_tracking\n")
}

/// The deal value row of the Dynamics 365 mapping, with `conflict: manual`.
pub(crate) fn manual_deal_value(rel: &str, text: String) -> String {
    if rel != "mappings/referral-opportunity-dynamics365.yaml" {
        return text;
    }
    let row =
        "  - name: Deal value\n    partner_center: $.details.dealValue\n    crm: estimatedvalue\n";
    assert!(text.contains(row), "the deal value row changed:\n{text}");
    text.replace(row, &format!("{row}    conflict: manual\n"))
}

/// A Prometheus metric's value in `/metrics` text, summed over its labels.
pub(crate) fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let rest = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once('}')?.1,
                None => rest,
            };
            rest.trim().parse::<f64>().ok()
        })
        .sum()
}

/// The service's `/metrics` text.
pub(crate) async fn metrics_text(serve: &Serve) -> String {
    http()
        .get(&serve.metrics_url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default()
}

/// A sandbox and a `cosync serve` (registered for the webhooks, 4 workers) on a
/// copy of the shipped project for one CRM, all in one temporary folder.
/// Fields drop in order: the service, then the sandbox, then the folder.
pub(crate) struct Pair {
    /// The service.
    pub(crate) serve: Serve,
    /// The sandbox.
    pub(crate) sandbox: Sandbox,
    /// The project folder.
    pub(crate) project: PathBuf,
    /// The state file.
    pub(crate) state: PathBuf,
    /// The service's log.
    pub(crate) log: PathBuf,
    /// The temporary folder holding everything.
    pub(crate) dir: tempfile::TempDir,
}

impl Pair {
    /// Starts both; `edit` changes project files, `poll` is the CRM poll interval.
    pub(crate) fn start(crm: Crm, edit: impl Fn(&str, String) -> String, poll: &str) -> Pair {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let project = project(dir.path(), crm, edit);
        let state = dir.path().join("state.db");
        let log = dir.path().join("serve.log");
        let sandbox = Sandbox::start(dir.path());
        let serve = Serve::start_registered(
            &sandbox,
            &ServeOptions {
                project: &project,
                state: &state,
                listen: "127.0.0.1:0",
                workers: 4,
                poll,
                log: &log,
            },
        );
        Pair {
            serve,
            sandbox,
            project,
            state,
            log,
            dir,
        }
    }
}

/// Asserts that every step of the seed's scenarios (`cosync::demo::play`)
/// synced, showing the failures and the service's log otherwise, and that both
/// scenarios ran all their steps (scenario 1: created + edited; scenario 2:
/// shared, accepted, won).
pub(crate) fn assert_all_synced(what: &str, steps: &[cosync::demo::StepResult], log: &Path) {
    let failed: Vec<String> = steps
        .iter()
        .filter(|s| !s.ok)
        .map(|s| format!("{} {}: {}", s.scenario, s.action, s.detail))
        .collect();
    assert!(
        failed.is_empty(),
        "{what} failed: {failed:#?}\nserve log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    assert_eq!(steps.len(), 5, "{steps:#?}");
}
