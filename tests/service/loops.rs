//! Loop convergence: one edit on one side is exactly one write on the other,
//! plus the flow's own synced mark / Audit line on the CRM, and the echoes of
//! those writes (the webhook of our referral update, the poll of our CRM
//! write) are processed and write nothing; then nothing is written at all.

use std::time::{Duration, Instant};

use cosync::demo::Crm;
use cosync::store::EventState;
use serde_json::{Value, json};

use super::harness::*;

/// The events stored after `after` (by id), per flow.
fn events_after(state: &std::path::Path, after: i64) -> Vec<(String, EventState)> {
    let s = store(state);
    let mut out = Vec::new();
    for st in [
        EventState::Queued,
        EventState::Running,
        EventState::Done,
        EventState::Dead,
    ] {
        for e in s.events(st, 100_000).unwrap_or_else(|e| panic!("{e}")) {
            if e.id > after {
                out.push((e.flow.unwrap_or_default(), e.state));
            }
        }
    }
    out
}

fn last_event_id(state: &std::path::Path) -> i64 {
    let s = store(state);
    [EventState::Done, EventState::Dead]
        .iter()
        .flat_map(|st| s.events(*st, 100_000).unwrap_or_default())
        .map(|e| e.id)
        .max()
        .unwrap_or(0)
}

fn of_service<'a>(writes: &'a [Value], service: &str) -> Vec<&'a Value> {
    writes.iter().filter(|w| w["service"] == service).collect()
}

#[test]
fn one_edit_converges_with_one_write_per_side_and_no_echo() {
    let _serial = serial();
    let Pair {
        serve,
        sandbox,
        project: _project,
        state,
        log: _log,
        dir: _dir,
    } = Pair::start(Crm::Dynamics365, as_shipped, "200ms");
    runtime().block_on(async {
        let admin = sandbox.admin();
        let (referral, opp) = synced_pair(&admin, &serve, "Loop convergence").await;

        // --- a CRM edit ---------------------------------------------------------
        let seq = last_write_seq(&admin).await;
        let before = last_event_id(&state);
        admin
            .patch(
                &format!("dataverse/opportunities({opp})"),
                &json!({"estimatedvalue": 150000}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        wait_for("the CRM edit in Partner Center", T, || async {
            let r = admin
                .get(&format!("partner_center/referrals/{referral}"))
                .await?;
            Ok((number(&r, "/details/dealValue") == Some(150000.0)).then_some(()))
        })
        .await;
        settle(&admin, &serve, QUIET, T).await;
        let after = writes_since(&admin, seq).await;
        let pc = of_service(&after, "partner_center");
        let crm = of_service(&after, "dataverse");
        assert_eq!(
            pc.len(),
            1,
            "one write to the referral: {:#?}",
            describe(&after)
        );
        assert_eq!(pc[0]["method"], "PATCH");
        assert!(
            pc[0]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with(&format!("/referrals/{referral}"))),
            "{:#?}",
            describe(&after)
        );
        // The flow's own synced mark and Audit line, and nothing else.
        assert_eq!(
            crm.len(),
            1,
            "only the synced mark on the CRM: {:#?}",
            describe(&after)
        );
        let mark = crm[0]["body"].as_object().cloned().unwrap_or_default();
        let mut keys: Vec<&str> = mark.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["cosell_audit", "cosell_lastsyncedon"], "{mark:?}");
        // The echoes were seen and processed: our referral update came back as
        // a webhook, our CRM write as a polled change.
        let events = events_after(&state, before);
        let count = |flow: &str| events.iter().filter(|(f, _)| f == flow).count();
        assert!(
            count("partner-center-to-dynamics365") >= 1,
            "the referral update's webhook: {events:?}"
        );
        assert!(
            count("dynamics365-to-partner-center") >= 2,
            "the edit and the echo of the synced mark: {events:?}"
        );
        assert!(
            events.iter().all(|(_, s)| *s == EventState::Done),
            "{events:?}"
        );

        // --- a Partner Center edit ---------------------------------------------
        let seq = last_write_seq(&admin).await;
        let before = last_event_id(&state);
        admin
            .patch(
                &format!("partner_center/referrals/{referral}"),
                &json!({"details": {"dealValue": 175000}}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        wait_for("the Partner Center edit in the CRM", T, || async {
            let o = admin
                .get(&format!("dataverse/opportunities({opp})"))
                .await?;
            Ok((number(&o, "/estimatedvalue") == Some(175000.0)).then_some(()))
        })
        .await;
        settle(&admin, &serve, QUIET, T).await;
        let after = writes_since(&admin, seq).await;
        assert_eq!(
            of_service(&after, "dataverse").len(),
            1,
            "one write to the opportunity (value, synced mark and Audit together): {:#?}",
            describe(&after)
        );
        assert_eq!(
            of_service(&after, "partner_center").len(),
            0,
            "no write back to Partner Center: {:#?}",
            describe(&after)
        );
        let events = events_after(&state, before);
        assert!(
            events
                .iter()
                .any(|(f, _)| f == "dynamics365-to-partner-center"),
            "the CRM write's echo was polled and processed: {events:?}"
        );
        assert!(
            events.iter().all(|(_, s)| *s == EventState::Done),
            "{events:?}"
        );

        // --- and then nothing ----------------------------------------------------
        let seq = last_write_seq(&admin).await;
        let quiet = Instant::now();
        while quiet.elapsed() < Duration::from_secs(1) {
            let late = writes_since(&admin, seq).await;
            assert!(
                late.is_empty(),
                "writes after convergence: {:#?}",
                describe(&late)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let c = counts(&state);
    assert_eq!((c.queued, c.running, c.dead), (0, 0, 0), "{c:?}");
}
