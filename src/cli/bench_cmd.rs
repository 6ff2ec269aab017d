//! `cosync bench`: drives N referral events through webhook → queue → flow → CRM
//! write against the in-process sandbox and service (shipped project, Partner
//! Center → Dynamics 365 flow), in two phases: `create` (new referrals: the
//! opportunity is created) and `update` (steady state: one field changed per
//! referral). Events are signed with the sandbox's key and posted at the offered
//! rate; latency runs from the POST to the event's end in the state store.
//! Reports throughput, latency p50/p95/p99, API calls per event and the peak
//! resident memory of the process (sandbox included), as a table or JSON.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};

use super::Outcome;
use super::args::{BenchArgs, OutputFormat};
use super::service_setup::{self, Overrides};
use crate::service::RetryPolicy;

mod cpu;

/// The figures of one phase.
#[derive(Debug, Clone, Serialize)]
struct Phase {
    name: &'static str,
    events: usize,
    processed: usize,
    failed: usize,
    seconds: f64,
    events_per_second: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    api_calls_per_event: f64,
    /// Process CPU time (user + system, every thread: service, sandbox and the
    /// bench's client) per event during the timed phase, in milliseconds.
    cpu_ms_per_event: f64,
    /// The part of `cpu_ms_per_event` spent on the service's threads (its
    /// runtime and the state store's): without the sandbox and the bench's
    /// client, which stand for Microsoft's services and Partner Center's
    /// webhook deliveries.
    service_cpu_ms_per_event: f64,
    /// The part of `cpu_ms_per_event` spent on the state store's owner thread
    /// (SQLite: queue, links, run records, commits and checkpoints).
    store_cpu_ms_per_event: f64,
    /// Cores busy on average during the phase (CPU time / wall time).
    cores_used: f64,
    /// The service's part of `cores_used`.
    service_cores_used: f64,
    /// State-store calls per committed transaction (group commit).
    store_calls_per_commit: f64,
    /// Why events failed, with counts.
    errors: std::collections::BTreeMap<String, usize>,
}

/// Runs the benchmark.
pub(super) fn run(args: &BenchArgs, color: bool) -> Outcome {
    if std::env::var_os("COSYNC_LOG").is_some() {
        service_setup::init_logging(false);
    }
    let runtime = match super::project::runtime() {
        Ok(r) => r,
        Err(o) => return o,
    };
    // The sandbox and the bench's webhook client stand for Microsoft's services:
    // they run on threads of their own, so that the service's own CPU can be told
    // apart from theirs ([`cpu::Split`]).
    let outside = match tokio::runtime::Builder::new_multi_thread()
        .thread_name(cpu::OUTSIDE_THREADS)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the sandbox's runtime: {e}");
            return Outcome::Usage;
        }
    };
    let result = runtime.block_on(bench(args, color, outside.handle().clone()));
    outside.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok((phases, peak_kib)) => {
            let ok = phases
                .iter()
                .all(|p| p.failed == 0 && p.processed == p.events);
            match args.format {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "events": args.events, "rate": args.rate, "workers": args.workers,
                        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                        "phases": phases, "peak_rss_mib": peak_kib as f64 / 1024.0,
                    }))
                    .unwrap_or_default()
                ),
                OutputFormat::Human => print!("{}", table(args, &phases, peak_kib)),
            }
            if ok {
                Outcome::Success
            } else {
                Outcome::Problems
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            Outcome::Problems
        }
    }
}

async fn bench(
    args: &BenchArgs,
    color: bool,
    outside: tokio::runtime::Handle,
) -> Result<(Vec<Phase>, u64), String> {
    let n = args.events.max(1);
    let (_dir, target) = super::demo_cmd::embedded_project()?;
    let mut project = service_setup::load(&target, color)
        .map_err(|_| "the embedded project does not load".to_string())?;
    // Only the path measured: Partner Center events into Dynamics 365.
    for f in &mut project.flows {
        f.enabled = f.name == "partner-center-to-dynamics365";
    }
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let seed_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let referrals: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| referral(id, i))
        .collect::<Result<_, _>>()?;
    std::fs::write(
        seed_dir.path().join("referrals.json"),
        json!({"partner_center": {"referrals": referrals}}).to_string(),
    )
    .map_err(|e| e.to_string())?;
    let sandbox = outside
        .spawn(crate::sandbox::start(crate::sandbox::SandboxConfig {
            seed_dir: Some(seed_dir.path().to_path_buf()),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("cannot start the sandbox: {e}"))?
        .map_err(|e| format!("cannot start the sandbox: {e}"))?;
    let urls = sandbox.urls().clone();
    // The benchmark measures cosync, not the services' protection limits.
    let unlimited = crate::spec::project::LimitsSpec {
        requests: None,
        window: None,
        concurrent: Some(256),
    };
    let opened = super::demo_cmd::sandbox_opened(project, &urls, Some(unlimited))?;
    let state_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let state_file = match &args.state {
        Some(path) if path.exists() => {
            return Err(format!(
                "{} exists; the benchmark needs a new state file",
                path.display()
            ));
        }
        Some(path) => path.clone(),
        None => state_dir.path().join("state.db"),
    };
    let store = service_setup::open_store(&state_file)?;
    let mut config = service_setup::service_config(
        &opened,
        store.clone(),
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            workers: Some(args.workers.max(1)),
            poll_interval: Some(Duration::from_secs(3600)),
        },
    )?;
    // `keep_runs` stays the project's (30 days): the state file is new, so
    // the pruner's pass at start-up finds nothing and the next is an hour away.
    config.max_body_bytes = 65_536;
    config.retry = RetryPolicy {
        attempts: 3,
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };
    let service = crate::service::start(config)
        .await
        .map_err(|e| format!("cannot start the service: {e}"))?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
    let admin = crate::demo::Admin::new(&urls.admin)?;
    let mut phases = Vec::new();
    for (name, event) in [
        ("create", "referral-created"),
        ("update", "referral-updated"),
    ] {
        if name == "update" {
            // Each referral changes one field, as a person's edit would.
            for (i, id) in ids.iter().enumerate() {
                admin
                    .patch(
                        &format!("partner_center/referrals/{id}"),
                        &json!({"details": {"dealValue": 60000 + i}}),
                    )
                    .await?;
            }
        }
        let phase = drive(
            &service, &sandbox, &client, &outside, &urls, &ids, name, event, args.rate,
        )
        .await?;
        phases.push(phase);
    }
    service.shutdown(Duration::from_secs(5)).await;
    outside
        .spawn(sandbox.shutdown())
        .await
        .map_err(|e| format!("the sandbox did not stop: {e}"))?;
    Ok((phases, peak_rss_kib()))
}

/// A referral Microsoft shared and the partner accepted.
fn referral(id: &str, i: usize) -> Result<Value, String> {
    let mut r = crate::demo::new_deal(&format!("Benchmark deal {i}"))?;
    if let Some(o) = r.as_object_mut() {
        o.insert("id".into(), json!(id));
        o.insert("status".into(), json!("Active"));
        o.insert("substatus".into(), json!("Accepted"));
    }
    Ok(r)
}

/// One event ready to post: its body and signed headers, made before the timed phase.
struct Prepared {
    body: String,
    headers: reqwest::header::HeaderMap,
}

/// Builds and signs every event of a phase. Signing (RSA-2048) costs about as much
/// as the service's work on an event, so it is done here, untimed; the event's
/// `ResourceChangeUtcDate` is the time it was prepared.
fn prepare(
    sandbox: &crate::sandbox::SandboxHandle,
    urls: &crate::sandbox::SandboxUrls,
    ids: &[String],
    event: &str,
) -> Result<Vec<Prepared>, String> {
    ids.iter()
        .map(|id| {
            let body = json!({
                "EventName": event,
                "ResourceUri": format!("{}/engagements/v1/referrals/{id}", urls.partner_center_webhooks),
                "ResourceName": "referral",
                "AuditUri": null,
                "ResourceChangeUtcDate": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            })
            .to_string();
            let mut headers = reqwest::header::HeaderMap::new();
            for (name, value) in sandbox.sandbox().webhook_headers(body.as_bytes())? {
                let value = reqwest::header::HeaderValue::from_str(&value)
                    .map_err(|e| format!("header {name}: {e}"))?;
                headers.insert(name, value);
            }
            Ok(Prepared { body, headers })
        })
        .collect()
}

/// Posts one signed event per referral at `rate` per second (0 = as fast as
/// 64 connections go) and waits until every event has ended.
#[allow(clippy::too_many_arguments)]
async fn drive(
    service: &crate::service::ServiceHandle,
    sandbox: &crate::sandbox::SandboxHandle,
    client: &reqwest::Client,
    outside: &tokio::runtime::Handle,
    urls: &crate::sandbox::SandboxUrls,
    ids: &[String],
    name: &'static str,
    event: &str,
    rate: u32,
) -> Result<Phase, String> {
    let store = service.store();
    let first_id = crate::service::blocking(&store, |s| s.last_event_id())
        .await
        .map_err(|e| e.to_string())?;
    let url = reqwest::Url::parse(&service.webhook_url()).map_err(|e| e.to_string())?;
    let prepared = prepare(sandbox, urls, ids, event)?;
    let before = service.metrics();
    let cpu_before = cpu::Split::now();
    let store_before = store.group_commits();
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, Prepared { body, headers }) in prepared.into_iter().enumerate() {
        if rate > 0 {
            let due = Duration::from_secs_f64(i as f64 / f64::from(rate));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let request = client.post(url.clone()).headers(headers).body(body);
        tasks.spawn_on(
            async move {
                let sent = Utc::now();
                let answer = request.send().await.map(|r| r.status());
                drop(permit);
                (i, sent, answer)
            },
            outside,
        );
    }
    let mut sent_at: Vec<Option<chrono::DateTime<Utc>>> = vec![None; ids.len()];
    let mut refused = 0;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok((i, sent, answer)) => {
                if let Some(slot) = sent_at.get_mut(i) {
                    *slot = Some(sent);
                }
                if !matches!(answer, Ok(s) if s.is_success()) {
                    refused += 1;
                }
            }
            Err(_) => refused += 1,
        }
    }
    let timings = wait_for_ends(service, first_id, ids.len(), refused, before).await?;
    let cpu = cpu::Split::now().since(&cpu_before);
    let store_after = store.group_commits();
    let wall = started.elapsed().as_secs_f64().max(1e-6);
    let sent: std::collections::HashMap<String, chrono::DateTime<Utc>> = ids
        .iter()
        .zip(sent_at)
        .filter_map(|(id, at)| Some((format!("referral:{id}"), at?)))
        .collect();
    let mut latencies = Vec::new();
    let mut last_end: Option<chrono::DateTime<Utc>> = None;
    let mut failed = refused;
    let mut errors = std::collections::BTreeMap::new();
    if refused > 0 {
        errors.insert("webhook refused".to_string(), refused);
    }
    for t in &timings {
        if t.state == crate::store::EventState::Dead || t.state == crate::store::EventState::Queued
        {
            failed += 1;
            let reason: String = t
                .error
                .clone()
                .unwrap_or_else(|| format!("still {:?} at the deadline", t.state).to_lowercase())
                .chars()
                .take(160)
                .collect();
            *errors.entry(reason).or_insert(0) += 1;
            continue;
        }
        let (Some(end), Some(start)) = (
            t.finished_at.as_deref().and_then(crate::domain::parse_time),
            sent.get(&t.record_key),
        ) else {
            continue;
        };
        last_end = Some(last_end.map_or(end, |l| l.max(end)));
        latencies.push((end - *start).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i]
    };
    let first_send = sent.values().min().copied();
    let seconds = match (first_send, last_end) {
        (Some(a), Some(b)) => ((b - a).num_microseconds().unwrap_or(0) as f64 / 1e6).max(1e-6),
        _ => started.elapsed().as_secs_f64(),
    };
    let processed = latencies.len();
    Ok(Phase {
        name,
        events: ids.len(),
        processed,
        failed,
        seconds,
        events_per_second: processed as f64 / seconds,
        p50_ms: pct(0.50),
        p95_ms: pct(0.95),
        p99_ms: pct(0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        api_calls_per_event: (service.metrics().calls - before.calls) as f64 / ids.len() as f64,
        cpu_ms_per_event: cpu.total * 1000.0 / ids.len() as f64,
        service_cpu_ms_per_event: cpu.service() * 1000.0 / ids.len() as f64,
        store_cpu_ms_per_event: cpu.store * 1000.0 / ids.len() as f64,
        cores_used: cpu.total / wall,
        service_cores_used: cpu.service() / wall,
        store_calls_per_commit: (store_after.0 - store_before.0) as f64
            / (store_after.1 - store_before.1).max(1) as f64,
        errors,
    })
}

/// Waits until every stored event of the phase has ended (a generous deadline) and
/// returns their timings. The service's in-memory counters say when that may be the
/// case; the store (a query over every event of the phase) is read then, or once a
/// second, so that polling does not compete with the workers for the store.
async fn wait_for_ends(
    service: &crate::service::ServiceHandle,
    first_id: i64,
    events: usize,
    refused: usize,
    before: crate::service::metrics::Snapshot,
) -> Result<Vec<crate::store::EventTiming>, String> {
    let store = service.store();
    let deadline = Instant::now() + Duration::from_secs(120 + events as u64 / 10);
    let mut last_read: Option<Instant> = None;
    loop {
        let now = service.metrics();
        let ended = (now.processed + now.dead).saturating_sub(before.processed + before.dead);
        let hinted = ended as usize + refused >= events;
        let due = last_read.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if hinted || due || Instant::now() > deadline {
            last_read = Some(Instant::now());
            let t = crate::service::blocking(&store, move |s| s.timings(first_id))
                .await
                .map_err(|e| e.to_string())?;
            let pending = t
                .iter()
                .any(|e| e.finished_at.is_none() || e.state == crate::store::EventState::Queued);
            if (!pending && t.len() + refused >= events) || Instant::now() > deadline {
                return Ok(t);
            }
        }
        tokio::time::sleep(Duration::from_millis(if hinted { 50 } else { 10 })).await;
    }
}

/// The process's peak resident set (VmHWM) in KiB; 0 where /proc is missing.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn table(args: &BenchArgs, phases: &[Phase], peak_kib: u64) -> String {
    let mut out = format!(
        "cosync bench: {} events per phase, offered rate {}, {} workers, {} cores\n\n",
        args.events,
        if args.rate == 0 {
            "max".to_string()
        } else {
            format!("{}/s", args.rate)
        },
        args.workers,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    out.push_str(&format!(
        "{:<8} {:>7} {:>7} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9} {:>9} {:>6} {:>11}\n",
        "phase",
        "events",
        "failed",
        "seconds",
        "events/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "calls/event",
        "cpu ms/ev",
        "svc ms/ev",
        "store ms",
        "cores",
        "calls/commit"
    ));
    for p in phases {
        out.push_str(&format!(
            "{:<8} {:>7} {:>7} {:>8.2} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>11.2} {:>9.2} {:>9.2} {:>9.2} {:>6.2} {:>11.1}\n",
            p.name,
            p.events,
            p.failed,
            p.seconds,
            p.events_per_second,
            p.p50_ms,
            p.p95_ms,
            p.p99_ms,
            p.max_ms,
            p.api_calls_per_event,
            p.cpu_ms_per_event,
            p.service_cpu_ms_per_event,
            p.store_cpu_ms_per_event,
            p.cores_used,
            p.store_calls_per_commit
        ));
    }
    for p in phases {
        for (reason, n) in &p.errors {
            out.push_str(&format!("  {} failed {n}x: {reason}\n", p.name));
        }
    }
    out.push_str(&format!(
        "\npeak resident memory {:.1} MiB (sandbox and service in one process)\n",
        peak_kib as f64 / 1024.0
    ));
    out
}
