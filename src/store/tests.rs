use serde_json::json;

use super::*;

fn event(record: &str, dedupe: &str) -> NewEvent {
    NewEvent {
        source: "partner_center".into(),
        record_key: format!("referral:{record}"),
        dedupe_key: dedupe.into(),
        flow: None,
        payload: json!({"EventName": "referral-updated", "id": record, "n": dedupe}),
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = Store::open(&dir.path().join("state.db")).unwrap_or_else(|e| panic!("{e}"));
    (dir, s)
}

#[test]
fn redeliveries_are_ignored() {
    let (_d, s) = store();
    assert!(matches!(
        s.enqueue(&event("a", "a-1")),
        Ok(Enqueued::New(_))
    ));
    assert!(matches!(
        s.enqueue(&event("a", "a-1")),
        Ok(Enqueued::Duplicate)
    ));
}

#[test]
fn one_event_per_record_at_a_time_in_order() {
    let (_d, s) = store();
    for (r, d) in [("a", "a-1"), ("b", "b-1")] {
        let _ = s.enqueue(&event(r, d));
    }
    let first = s.claim(10).unwrap_or_default();
    let keys: Vec<&str> = first.iter().map(|e| e.dedupe_key.as_str()).collect();
    assert_eq!(keys, vec!["a-1", "b-1"]);
    // a-2 arrives while a-1 runs: it is kept (a-1 is not waiting) and waits.
    let _ = s.enqueue(&event("a", "a-2"));
    // a-2 waits until a-1 is done
    assert!(s.claim(10).unwrap_or_default().is_empty());
    let _ = s.complete(first[0].id, Some("run-1"));
    let next = s.claim(10).unwrap_or_default();
    assert_eq!(
        next.iter()
            .map(|e| e.dedupe_key.as_str())
            .collect::<Vec<_>>(),
        vec!["a-2"]
    );
}

#[test]
fn failures_retry_then_dead_letter_then_replay() {
    let (_d, s) = store();
    let _ = s.enqueue(&event("a", "a-1"));
    let e = s.claim(1).unwrap_or_default().remove(0);
    assert_eq!(e.attempts, 1);
    // retry later: not claimable now
    let _ = s.fail(
        e.id,
        "503 from Dataverse",
        None,
        Some(std::time::Duration::from_secs(3600)),
    );
    assert!(s.claim(1).unwrap_or_default().is_empty());
    // (a later event of the same record would supersede it: see below)
    let _ = s.fail(e.id, "gave up: 503", None, None);
    let dead = s.events(EventState::Dead, 10).unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("gave up: 503"));
    assert_eq!(s.replay(None).unwrap_or(0), 1);
    let again = s.claim(5).unwrap_or_default();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].dedupe_key, "a-1");
    assert_eq!(again[0].attempts, 1);
}

#[test]
fn a_crash_leaves_nothing_lost() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("state.db");
    {
        let s = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let _ = s.enqueue(&event("a", "a-1"));
        let claimed = s.claim(1).unwrap_or_default();
        assert_eq!(claimed.len(), 1);
        // dropped while "running", as a kill -9 would leave it
    }
    let s = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.claim(1).unwrap_or_default().is_empty());
    assert_eq!(s.recover().unwrap_or(0), 1);
    assert_eq!(s.claim(1).unwrap_or_default().len(), 1);
}

#[test]
fn links_keep_the_base_and_conflicts_are_parked() {
    let (_d, s) = store();
    let mut base = crate::mapping::Base::new();
    base.insert(
        "Deal value".into(),
        crate::mapping::RowValues {
            partner_center: json!(1000),
            crm: json!("1000.00"),
        },
    );
    let _ = s.save_link("m", "r1", Some("o1"), &base);
    let link = s.link_by_crm("m", "o1").ok().flatten();
    assert_eq!(link.as_ref().map(|l| l.referral_id.as_str()), Some("r1"));
    assert_eq!(link.map(|l| l.base), Some(base));
    let c = crate::mapping::Conflict {
        label: "Notes".into(),
        partner_center: json!("a"),
        crm: json!("b"),
        base: None,
    };
    let id = s.park_conflict("m", "r1", Some("o1"), &c).unwrap_or(0);
    assert_eq!(s.conflicts(false).unwrap_or_default().len(), 1);
    let resolved = s.resolve_conflict(id, "crm").ok();
    assert_eq!(resolved.and_then(|c| c.resolution), Some("crm".into()));
    assert!(s.conflicts(false).unwrap_or_default().is_empty());
    assert!(s.resolve_conflict(id, "crm").is_err());
}

#[test]
fn a_new_event_supersedes_the_waiting_ones_of_its_record() {
    let (_d, s) = store();
    let _ = s.enqueue(&event("a", "a-1"));
    let e = s.claim(1).unwrap_or_default().remove(0);
    // a-1 fails and waits for its retry; a-2 and a-3 arrive.
    let _ = s.fail(
        e.id,
        "boom",
        None,
        Some(std::time::Duration::from_secs(3600)),
    );
    let _ = s.enqueue(&event("b", "b-1"));
    let _ = s.enqueue(&event("a", "a-2"));
    let _ = s.enqueue(&event("a", "a-3"));
    let claimed = s.claim(10).unwrap_or_default();
    let keys: Vec<&str> = claimed.iter().map(|e| e.dedupe_key.as_str()).collect();
    assert_eq!(keys, vec!["b-1", "a-3"], "a-1 and a-2 were superseded");
    let old = s.event(e.id).ok().flatten();
    assert_eq!(old.as_ref().map(|e| e.state), Some(EventState::Done));
    assert!(
        old.and_then(|e| e.last_error)
            .is_some_and(|m| m.starts_with("superseded by event"))
    );
}

#[test]
fn the_claim_walks_the_queue_index_without_sorting_the_backlog() {
    let (_d, s) = store();
    let conn = s.conn().unwrap_or_else(|e| panic!("{e}"));
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", queue::claim_sql()))
        .unwrap_or_else(|e| panic!("{e}"));
    let plan: Vec<String> = stmt
        .query_map(rusqlite::params!["2030-01-01", 1], |r| {
            r.get::<_, String>(3)
        })
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .collect();
    let text = plan.join("\n");
    assert!(text.contains("events_due"), "{text}");
    assert!(!text.contains("TEMP B-TREE"), "{text}");
    assert!(
        text.contains("events_running") && text.contains("events_waiting"),
        "the record checks use the partial indexes: {text}"
    );
}

#[test]
fn run_records_are_stored_compressed_and_older_text_records_still_read() {
    let (_dir, s) = store();
    let record = crate::record::RunRecord {
        run_id: "01a2-compressed".into(),
        flow: "partner-center-to-dynamics365".into(),
        trigger: json!({"event": "referral-updated", "notes": "x".repeat(6000)}),
        status: crate::spec::flow::RunStatus::Succeeded,
        message: None,
        error: None,
        dry_run: false,
        started_at: "2026-11-25T00:00:00.000Z".into(),
        duration_ms: 3,
        steps: Vec::new(),
        writes: Vec::new(),
        calls: Vec::new(),
    };
    s.save_run(&record, Some(7))
        .unwrap_or_else(|e| panic!("{e}"));
    let back = s.run("01a2-comp").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        back,
        Some(serde_json::to_value(&record).unwrap_or_else(|e| panic!("{e}")))
    );
    let conn = s.conn().unwrap_or_else(|e| panic!("{e}"));
    let (kind, size): (String, i64) = conn
        .query_row(
            "SELECT typeof(record), length(record) FROM runs WHERE run_id = '01a2-compressed'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kind, "blob");
    assert!(size < 1000, "6,000 repeated bytes compress: {size}");

    // A record written as JSON text by an earlier version, and a damaged block.
    conn.execute_batch(
        r#"INSERT INTO runs VALUES ('01a2-text', 'f', 'succeeded', '2026-01-01T00:00:00Z', 1, NULL, '{"run_id":"01a2-text"}');
           INSERT INTO runs VALUES ('01a2-damaged', 'f', 'failed', '2026-01-01T00:00:00Z', 1, NULL, x'ff00ff00ff');"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    drop(conn);
    assert_eq!(
        s.run("01a2-text").unwrap_or_else(|e| panic!("{e}")),
        Some(json!({"run_id": "01a2-text"}))
    );
    let Err(damaged) = s.run("01a2-damaged") else {
        panic!("a damaged block reads")
    };
    assert!(
        matches!(
            damaged,
            StoreError::Corrupt {
                what: "run record",
                ..
            }
        ),
        "{damaged}"
    );
}

#[test]
fn a_link_takes_a_new_crm_id_and_keeps_it_when_saved_without_change() {
    let (_d, s) = store();
    let base = crate::mapping::Base::new();
    let _ = s.save_link("m", "r1", Some("o1"), &base);
    let _ = s.save_link("m", "r1", Some("o1"), &base);
    assert!(s.link_by_crm("m", "o1").ok().flatten().is_some());
    let _ = s.save_link("m", "r1", Some("o2"), &base);
    assert!(s.link_by_crm("m", "o1").ok().flatten().is_none());
    let moved = s.link_by_referral("m", "r1").ok().flatten();
    assert_eq!(moved.and_then(|l| l.crm_id), Some("o2".into()));
    let _ = s.save_link("m", "r1", None, &base);
    let cleared = s.link_by_referral("m", "r1").ok().flatten();
    assert_eq!(cleared.map(|l| l.crm_id), Some(None));
}

#[test]
fn counts_tell_every_state_and_leave_out_empty_ones() {
    let (_d, s) = store();
    assert_eq!(s.counts().unwrap_or_else(|e| panic!("{e}")), vec![]);
    for (r, d) in [("a", "a-1"), ("b", "b-1"), ("c", "c-1"), ("d", "d-1")] {
        let _ = s.enqueue(&event(r, d));
    }
    let claimed = s.claim(3).unwrap_or_default();
    assert_eq!(claimed.len(), 3);
    let _ = s.complete(claimed[0].id, None);
    let _ = s.fail(claimed[1].id, "boom", None, None);
    assert_eq!(
        s.counts().unwrap_or_else(|e| panic!("{e}")),
        vec![
            (EventState::Dead, 1),
            (EventState::Done, 1),
            (EventState::Queued, 1),
            (EventState::Running, 1),
        ]
    );
}

#[test]
fn a_state_file_with_the_earlier_queue_indexes_gets_the_partial_ones() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("state.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch(
            "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL,
                 record_key TEXT NOT NULL, dedupe_key TEXT NOT NULL UNIQUE, flow TEXT,
                 payload TEXT NOT NULL, received_at TEXT NOT NULL,
                 state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
                 next_attempt_at TEXT NOT NULL, last_error TEXT, run_id TEXT, finished_at TEXT);
             CREATE INDEX events_ready ON events(state, next_attempt_at);
             CREATE INDEX events_queue ON events(state, id);
             CREATE INDEX events_record ON events(record_key, state, id);
             INSERT INTO events (source, record_key, dedupe_key, payload, received_at, next_attempt_at)
                 VALUES ('partner_center', 'referral:a', 'a-1', '{}', '2026-01-01', '2026-01-01');",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let s = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let conn = s.conn().unwrap_or_else(|e| panic!("{e}"));
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL ORDER BY name")
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .collect();
    assert_eq!(
        names,
        [
            "events_dead",
            "events_due",
            "events_running",
            "events_waiting"
        ]
    );
    drop(stmt);
    drop(conn);
    let claimed = s.claim(10).unwrap_or_default();
    assert_eq!(claimed.len(), 1, "the queued event is still claimed");
}

/// Inserts an event as stored at `received` and, unless open, ended at `finished`.
fn old_event(s: &Store, id: i64, state: &str, received: &str, finished: Option<&str>) {
    let conn = s.conn().unwrap_or_else(|e| panic!("{e}"));
    conn.execute(
        "INSERT INTO events (id, source, record_key, dedupe_key, payload, received_at, state, next_attempt_at, finished_at)
         VALUES (?1, 'test', ?2, ?3, '{}', ?4, ?5, ?4, ?6)",
        rusqlite::params![id, format!("r{id}"), format!("d{id}"), received, state, finished],
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

fn old_run(s: &Store, id: &str, started: &str) {
    let conn = s.conn().unwrap_or_else(|e| panic!("{e}"));
    conn.execute(
        "INSERT INTO runs VALUES (?1, 'f', 'succeeded', ?2, 1, NULL, '{}')",
        rusqlite::params![id, started],
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

fn ids(s: &Store, sql: &str) -> Vec<String> {
    let conn = s.conn().unwrap_or_else(|e| panic!("{e}"));
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{e}"));
    stmt.query_map([], |r| r.get::<_, rusqlite::types::Value>(0))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .map(|v| match v {
            rusqlite::types::Value::Integer(n) => n.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .collect()
}

/// Runs an events pass to its end; returns what each call deleted.
fn events_pass(s: &Store, before: &str, span: i64) -> Vec<usize> {
    let mut from = None;
    let mut calls = Vec::new();
    for _ in 0..1000 {
        let step = s
            .prune_events(before, from, span)
            .unwrap_or_else(|e| panic!("{e}"));
        calls.push(step.deleted);
        match step.next {
            Some(next) => from = Some(next),
            None => return calls,
        }
    }
    panic!("the pass does not end: {calls:?}");
}

const CUTOFF: &str = "2026-03-01T00:00:00.000Z";

#[test]
fn runs_started_before_the_cutoff_go_in_bounded_batches() {
    let (_d, s) = store();
    for i in 0..7 {
        old_run(
            &s,
            &format!("old-{i}"),
            &format!("2026-02-0{}T10:00:00.000Z", i + 1),
        );
    }
    old_run(&s, "just-before", "2026-02-28T23:59:59.999Z");
    old_run(&s, "at-the-cutoff", CUTOFF);
    old_run(&s, "new", "2026-03-02T00:00:00.000Z");
    let mut calls = Vec::new();
    loop {
        let n = s.prune_runs(CUTOFF, 3).unwrap_or_else(|e| panic!("{e}"));
        calls.push(n);
        if n < 3 {
            break;
        }
        assert!(calls.len() < 10, "{calls:?}");
    }
    assert_eq!(calls, vec![3, 3, 2], "at most the limit per call");
    assert_eq!(
        ids(&s, "SELECT run_id FROM runs ORDER BY run_id"),
        ["at-the-cutoff", "new"]
    );
    assert_eq!(s.prune_runs(CUTOFF, 3).unwrap_or_else(|e| panic!("{e}")), 0);
}

#[test]
fn the_last_run_of_a_dead_letter_is_kept() {
    let (_d, s) = store();
    old_run(&s, "failed", "2026-02-01T00:00:00.000Z");
    old_run(&s, "other", "2026-02-01T00:00:01.000Z");
    old_event(&s, 1, "dead", "2026-02-01T00:00:00.000Z", None);
    {
        let conn = s.conn().unwrap_or_else(|e| panic!("{e}"));
        conn.execute("UPDATE events SET run_id = 'failed' WHERE id = 1", [])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        s.prune_runs(CUTOFF, 10).unwrap_or_else(|e| panic!("{e}")),
        1
    );
    assert_eq!(ids(&s, "SELECT run_id FROM runs"), ["failed"]);
    // Replayed and done: its run is history like any other.
    let _ = s.replay(Some(1));
    let claimed = s.claim(1).unwrap_or_default();
    assert_eq!(claimed.len(), 1);
    let _ = s.complete(1, Some("replayed"));
    assert_eq!(
        s.prune_runs(CUTOFF, 10).unwrap_or_else(|e| panic!("{e}")),
        1
    );
    assert!(ids(&s, "SELECT run_id FROM runs").is_empty());
}

#[test]
fn the_oldest_runs_go_first() {
    let (_d, s) = store();
    old_run(&s, "b", "2026-02-02T00:00:00.000Z");
    old_run(&s, "a", "2026-02-01T00:00:00.000Z");
    old_run(&s, "c", "2026-02-03T00:00:00.000Z");
    assert_eq!(s.prune_runs(CUTOFF, 2).unwrap_or_else(|e| panic!("{e}")), 2);
    assert_eq!(ids(&s, "SELECT run_id FROM runs"), ["c"]);
}

#[test]
fn only_events_that_ended_before_the_cutoff_go() {
    let (_d, s) = store();
    let old = "2026-01-01T00:00:00.000Z";
    let ended = Some("2026-01-01T00:00:01.000Z");
    old_event(&s, 1, "done", old, ended);
    old_event(&s, 2, "queued", old, None);
    old_event(&s, 3, "running", old, None);
    old_event(&s, 4, "dead", old, ended);
    // Received before the cutoff, ended after it (it retried for a while).
    old_event(&s, 5, "done", old, Some("2026-03-01T00:00:00.001Z"));
    // A done event of an early version, without an end time.
    old_event(&s, 6, "done", old, None);
    old_event(
        &s,
        7,
        "done",
        "2026-02-28T23:00:00.000Z",
        Some("2026-02-28T23:59:59.999Z"),
    );
    old_event(
        &s,
        8,
        "done",
        "2026-03-02T00:00:00.000Z",
        Some("2026-03-02T00:00:01.000Z"),
    );
    assert_eq!(events_pass(&s, CUTOFF, 100).iter().sum::<usize>(), 3);
    assert_eq!(
        ids(&s, "SELECT id FROM events ORDER BY id"),
        ["2", "3", "4", "5", "8"]
    );
    // The kept ones still work: the queued event is claimed, the dead one replays.
    assert_eq!(s.claim(10).unwrap_or_default().len(), 1);
    assert_eq!(s.replay(Some(4)).unwrap_or(0), 1);
}

#[test]
fn an_events_pass_steps_over_gaps_and_old_dead_letters_in_bounded_calls() {
    let (_d, s) = store();
    let old = "2026-01-01T00:00:00.000Z";
    let ended = Some("2026-01-01T00:01:00.000Z");
    // Ids 1..=10 done, a dead letter at 11, a gap, then 1000..=1009 done, a
    // queued retry at 1010, then events received after the cutoff.
    for id in 1..=10 {
        old_event(&s, id, "done", old, ended);
    }
    old_event(&s, 11, "dead", old, ended);
    for id in 1000..=1009 {
        old_event(&s, id, "done", old, ended);
    }
    old_event(&s, 1010, "queued", old, None);
    for id in 1011..=1015 {
        old_event(
            &s,
            id,
            "done",
            "2026-03-01T00:00:00.000Z",
            Some("2026-03-01T00:00:01.000Z"),
        );
    }
    old_event(&s, 5000, "done", old, ended);
    let calls = events_pass(&s, CUTOFF, 4);
    assert!(calls.iter().all(|n| *n <= 4), "at most the span: {calls:?}");
    // 1-4, 5-8, 9-12, then a seek to 1000: 1000-1003, 1004-1007, 1008-1011;
    // the next event (1012) was received at the cutoff: the pass ends without
    // walking the gap between 12 and 1000 or the newer events.
    assert_eq!(calls, vec![4, 4, 2, 4, 4, 2, 0]);
    assert_eq!(
        ids(&s, "SELECT id FROM events ORDER BY id"),
        ["11", "1010", "1011", "1012", "1013", "1014", "1015", "5000"],
        "an old event after newer ones (a clock set back) waits for a later pass"
    );
    // A second pass starts at the dead letter and deletes nothing.
    assert_eq!(events_pass(&s, CUTOFF, 4), vec![0, 0, 0]);
}

#[test]
fn an_events_pass_over_an_empty_queue_ends_at_once() {
    let (_d, s) = store();
    assert_eq!(events_pass(&s, CUTOFF, 1000), vec![0]);
}

#[test]
fn pruning_reads_the_rowid_and_the_runs_index_not_the_whole_tables() {
    let (_d, s) = store();
    let conn = s.conn().unwrap_or_else(|e| panic!("{e}"));
    let plan = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> String {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let rows: Vec<String> = stmt
            .query_map(params, |r| r.get::<_, String>(3))
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(Result::ok)
            .collect();
        rows.join("\n")
    };
    let runs = plan(retention::PRUNE_RUNS, &[&CUTOFF, &10]);
    assert!(runs.contains("runs_started"), "{runs}");
    assert!(!runs.contains("SCAN runs"), "{runs}");
    let events = plan(retention::PRUNE_EVENTS, &[&1, &1001, &CUTOFF]);
    assert!(events.contains("rowid>? AND rowid<?"), "{events}");
}
