//! A conflict: the deal value row's policy is `manual`; with the service
//! stopped, the deal value is edited in both systems; once restarted, the
//! service parks the conflict (`cosync conflicts list`) and writes neither
//! value over the other; `cosync conflicts resolve ID --take crm` makes the
//! running service land the CRM's value in Partner Center.

use std::time::Duration;

use cosync::demo::Crm;
use serde_json::{Value, json};

use super::harness::*;

pub(crate) fn open_conflicts(state: &std::path::Path) -> Vec<Value> {
    let v = json_out(&cosync(
        &[
            "conflicts",
            "list",
            "--state",
            path(state),
            "--format",
            "json",
        ],
        None,
    ));
    v["conflicts"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_manual_conflict_is_parked_and_resolving_it_lands_the_chosen_value() {
    let _serial = serial();
    let Pair {
        mut serve,
        sandbox,
        project,
        state,
        log: _first_log,
        dir,
    } = Pair::start(Crm::Dynamics365, manual_deal_value, "200ms");
    let rt = runtime();
    let admin = sandbox.admin();
    let (referral, opp) = rt.block_on(async {
        admin
            .patch(
                "settings",
                &json!({"delivery": {"initial_backoff_ms": 100, "max_backoff_ms": 500}}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        synced_pair(&admin, &serve, "Manual conflict").await
    });
    assert!(open_conflicts(&state).is_empty());

    // Stop the service (gracefully: exit 0), edit both sides, start it again.
    assert_eq!(serve.proc.terminate(Duration::from_secs(10)), Some(0));
    rt.block_on(async {
        admin
            .patch(
                &format!("partner_center/referrals/{referral}"),
                &json!({"details": {"dealValue": 111111}}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        admin
            .patch(
                &format!("dataverse/opportunities({opp})"),
                &json!({"estimatedvalue": 222222}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    });
    let listen = serve.listen.clone();
    let second_log = dir.path().join("serve-2.log");
    serve = Serve::start_registered(
        &sandbox,
        &ServeOptions {
            project: &project,
            state: &state,
            listen: &listen,
            workers: 4,
            poll: "200ms",
            log: &second_log,
        },
    );
    let conflict = rt.block_on(async {
        let conflict = wait_for("a parked conflict", T, || async {
            let open = open_conflicts(&state);
            Ok(open.first().cloned())
        })
        .await;
        settle(&admin, &serve, QUIET, T).await;
        conflict
    });
    let open = open_conflicts(&state);
    assert_eq!(open.len(), 1, "parked once: {open:#?}");
    assert_eq!(conflict["field"], "Deal value", "{conflict:#}");
    assert_eq!(conflict["referral_id"], json!(referral));
    assert_eq!(conflict["crm_id"], json!(opp));
    assert_eq!(
        number(&conflict, "/partner_center"),
        Some(111111.0),
        "{conflict:#}"
    );
    assert_eq!(number(&conflict, "/crm"), Some(222222.0), "{conflict:#}");
    // Neither value overwrote the other.
    rt.block_on(async {
        let r = admin
            .get(&format!("partner_center/referrals/{referral}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(number(&r, "/details/dealValue"), Some(111111.0));
        let o = admin
            .get(&format!("dataverse/opportunities({opp})"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(number(&o, "/estimatedvalue"), Some(222222.0));
    });

    let id = conflict["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{conflict}"));
    let resolved = json_out(&cosync(
        &[
            "conflicts",
            "resolve",
            &id.to_string(),
            "--take",
            "crm",
            "-p",
            path(&project),
            "--state",
            path(&state),
            "--format",
            "json",
        ],
        None,
    ));
    assert_eq!(resolved["take"], "crm", "{resolved:#}");
    assert!(
        resolved["queued"].as_array().is_some_and(|q| !q.is_empty()),
        "{resolved:#}"
    );
    rt.block_on(async {
        wait_for("the CRM's value in Partner Center", T, || async {
            let r = admin
                .get(&format!("partner_center/referrals/{referral}"))
                .await?;
            Ok((number(&r, "/details/dealValue") == Some(222222.0)).then_some(()))
        })
        .await;
        settle(&admin, &serve, QUIET, T).await;
        let o = admin
            .get(&format!("dataverse/opportunities({opp})"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(number(&o, "/estimatedvalue"), Some(222222.0));
    });
    assert!(
        open_conflicts(&state).is_empty(),
        "{:#?}",
        open_conflicts(&state)
    );
    let c = counts(&state);
    assert_eq!((c.queued, c.running, c.dead), (0, 0, 0), "{c:?}");
}
