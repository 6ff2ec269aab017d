//! The record mirror: a steady-state change reads the referral and writes the
//! opportunity (two API calls), and a CRM edit the poller has not seen yet is
//! never written over from the mirrored copy — the write carries the mirrored
//! version, the CRM refuses it, and the run is made again on fresh reads (here
//! it then finds the conflict and parks it).

use cosync::demo::Crm;
use serde_json::json;

use super::conflicts::open_conflicts;
use super::harness::*;

#[test]
fn a_crm_edit_the_poller_has_not_seen_is_not_written_over_from_the_mirror() {
    let _serial = serial();
    // No polling during the test: the service learns of CRM edits only when a
    // write is refused.
    let Pair {
        serve,
        sandbox,
        state,
        project: _project,
        log: _log,
        dir: _dir,
    } = Pair::start(Crm::Dynamics365, manual_deal_value, "1h");
    runtime().block_on(async {
        let admin = sandbox.admin();
        let (referral, opp) = synced_pair(&admin, &serve, "Mirror").await;

        // A steady-state change: the referral is read, the opportunity written.
        let before = metrics_text(&serve).await;
        let seq = last_write_seq(&admin).await;
        admin
            .patch(
                &format!("partner_center/referrals/{referral}"),
                &json!({"details": {"dealValue": 101000}}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        wait_for("the new deal value in the CRM", T, || async {
            let o = admin
                .get(&format!("dataverse/opportunities({opp})"))
                .await?;
            Ok((number(&o, "/estimatedvalue") == Some(101000.0)).then_some(()))
        })
        .await;
        settle(&admin, &serve, QUIET, T).await;
        let after = metrics_text(&serve).await;
        let calls =
            metric(&after, "cosync_api_calls_total") - metric(&before, "cosync_api_calls_total");
        assert_eq!(
            calls, 2.0,
            "get the referral, update the opportunity\n{after}"
        );
        assert!(
            metric(&after, "cosync_mirror_hits_total")
                > metric(&before, "cosync_mirror_hits_total"),
            "{after}"
        );
        let written = writes_since(&admin, seq).await;
        assert_eq!(written.len(), 1, "{:#?}", describe(&written));

        // A person edits the deal value in the CRM; the poller is asleep, so the
        // mirrored opportunity is out of date. Partner Center changes it too.
        admin
            .patch(
                &format!("dataverse/opportunities({opp})"),
                &json!({"estimatedvalue": 77000}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        admin
            .patch(
                &format!("partner_center/referrals/{referral}"),
                &json!({"details": {"dealValue": 88000}}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let conflict = wait_for("a parked conflict", T, || async {
            Ok(open_conflicts(&state).first().cloned())
        })
        .await;
        settle(&admin, &serve, QUIET, T).await;
        assert_eq!(conflict["field"], "Deal value", "{conflict:#}");
        assert_eq!(number(&conflict, "/crm"), Some(77000.0), "{conflict:#}");
        assert_eq!(
            number(&conflict, "/partner_center"),
            Some(88000.0),
            "{conflict:#}"
        );
        let o = admin
            .get(&format!("dataverse/opportunities({opp})"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            number(&o, "/estimatedvalue"),
            Some(77000.0),
            "the person's edit stands"
        );
        let audit = o["cosell_audit"].as_str().unwrap_or_default();
        assert!(
            !audit.contains("FAILED"),
            "a stale read is not a failure: {audit}"
        );
        let metrics = metrics_text(&serve).await;
        assert!(
            metric(&metrics, "cosync_runs_restarted_total") >= 1.0,
            "{metrics}"
        );
        let c = counts(&state);
        assert_eq!((c.queued, c.running, c.dead), (0, 0, 0), "{c:?}");
    });
}
