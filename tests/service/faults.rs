//! Faults: with the sandbox answering 503 and 429 (`Retry-After: 1`) and
//! dropping connections on a share of the Dataverse and Partner Center calls,
//! the Dynamics 365 scenarios still sync. A permanent 500 on the opportunity
//! create route makes the event a dead letter after the configured attempts;
//! once the fault is gone, `cosync replay --all` syncs the record.

use std::time::Duration;

use cosync::demo::{Crm, play};
use cosync::store::EventState;
use serde_json::{Value, json};

use super::harness::*;

/// Service retries: 10 attempts, 200 ms doubling up to 1 s.
///
/// The transient faults are random: an attempt of the new-deal flow makes two
/// creates (account, opportunity) that each drop at 20 %, and several reads that
/// fail at 30 % per try, so an attempt fails about 40-50 % of the time. With
/// 5 attempts an event became a dead letter in about one run in a hundred (CI
/// saw it); with 10 that is about 0.5^10, one in a thousand per event at worst.
fn ten_attempts(rel: &str, text: String) -> String {
    if rel != "cosync.yaml" {
        return text;
    }
    let line = "retry: { attempts: 3, initial_backoff: 200ms, max_backoff: 1s }";
    assert!(text.contains(line));
    text.replace(
        line,
        "retry: { attempts: 10, initial_backoff: 200ms, max_backoff: 1s }",
    )
}

#[test]
fn transient_faults_converge_and_a_permanent_one_is_a_dead_letter_until_replayed() {
    let _serial = serial();
    let Pair {
        serve,
        sandbox,
        project: _project,
        state,
        log,
        dir: _dir,
    } = Pair::start(Crm::Dynamics365, ten_attempts, "200ms");
    let rt = runtime();
    let admin = sandbox.admin();

    // --- transient faults: 30% 503 / 429 with Retry-After, 20-30% drops ----------
    let steps = rt.block_on(async {
        // First match wins, so one kind per method and service. Each kind first
        // fires once for certain (`count: 1`, then the rule is gone), then at its
        // rate, so the check below that every kind happened cannot be unlucky.
        let rules = json!([
            {"service": "dataverse", "method": "GET", "kind": "status", "code": 503, "rate": 1.0, "count": 1},
            {"service": "dataverse", "method": "PATCH", "kind": "throttle", "retry_after": 1, "rate": 1.0, "count": 1},
            {"service": "partner_center", "method": "GET", "kind": "drop", "rate": 1.0, "count": 1},
            {"service": "dataverse", "method": "GET", "kind": "status", "code": 503, "rate": 0.3},
            {"service": "dataverse", "method": "PATCH", "kind": "throttle", "retry_after": 1, "rate": 0.3},
            {"service": "dataverse", "method": "POST", "kind": "drop", "rate": 0.2},
            {"service": "partner_center", "method": "GET", "kind": "drop", "rate": 0.3},
            {"service": "partner_center", "kind": "status", "code": 503, "rate": 0.3}
        ]);
        admin
            .post("faults", &rules)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let steps = play(
            &admin.clone().with_service(&serve.base),
            Crm::Dynamics365,
            Duration::from_secs(45),
        )
        .await;
        admin
            .send(reqwest::Method::DELETE, "faults", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        steps
    });
    assert_all_synced("under faults", &steps, &log);
    rt.block_on(async {
        // The faults really happened.
        let requests = admin
            .get("requests")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let faults: Vec<&str> = requests
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["fault"].as_str())
            .collect();
        for kind in ["status 503", "throttle", "drop"] {
            assert!(
                faults.iter().any(|f| f.starts_with(kind)),
                "no `{kind}` fault was injected: {faults:?}"
            );
        }
        settle(&admin, &serve, QUIET, T).await;
    });
    assert_eq!(counts(&state).dead, 0, "{:?}", counts(&state));

    // --- a permanent fault: dead letter, then replay ---------------------------
    let (referral, rule) = rt.block_on(async {
        let rule = admin
            .post(
                "faults",
                &json!({"service": "dataverse", "method": "POST", "path_prefix": "/api/data/v9.2/opportunities", "kind": "status", "code": 500}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let rule = rule[0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{rule}"))
            .to_string();
        (create_referral(&admin, "Dead letter").await, rule)
    });
    let key = format!("referral:{referral}");
    // Ten attempts with backoff up to 1 s, each retrying the 500 inside the
    // connector: give it well beyond the usual wait.
    let dead = rt.block_on(wait_for("the dead letter", 3 * T, || async {
        let dead = store(&state)
            .events(EventState::Dead, 1000)
            .map_err(|e| e.to_string())?;
        Ok(dead.into_iter().find(|e| e.record_key == key))
    }));
    assert_eq!(dead.attempts, 10, "the configured attempts: {dead:?}");
    assert_eq!(
        dead.flow.as_deref(),
        Some("partner-center-to-dynamics365"),
        "{dead:?}"
    );
    assert!(
        dead.last_error
            .as_deref()
            .is_some_and(|e| e.contains("500")),
        "{dead:?}"
    );
    rt.block_on(async {
        let opps = opportunities_of(&admin, &referral)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(opps.is_empty(), "{opps:#?}");
        admin
            .send(reqwest::Method::DELETE, &format!("faults/{rule}"), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    });
    let replayed = json_out(&cosync(
        &[
            "replay",
            "--all",
            "--state",
            path(&state),
            "--format",
            "json",
        ],
        None,
    ));
    assert_eq!(replayed["replayed"], json!(1), "{replayed:#}");
    assert_eq!(replayed["ids"], json!([dead.id]), "{replayed:#}");
    rt.block_on(async {
        let opp: Value = wait_for("the replayed referral in the CRM", T, || async {
            Ok(opportunities_of(&admin, &referral)
                .await?
                .into_iter()
                .next())
        })
        .await;
        settle(&admin, &serve, QUIET, T).await;
        assert_eq!(
            opportunities_of(&admin, &referral)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .len(),
            1
        );
        let r = admin
            .get(&format!("partner_center/referrals/{referral}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r["externalReferenceId"], opp["opportunityid"]);
    });
    let event = store(&state)
        .event(dead.id)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("event {} is gone", dead.id));
    assert_eq!(event.state, EventState::Done, "{event:?}");
    let c = counts(&state);
    assert_eq!((c.queued, c.running, c.dead), (0, 0, 0), "{c:?}");
}
