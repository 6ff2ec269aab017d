//! Crash safety: referrals are created quickly while `cosync serve` runs, and
//! the service is killed with SIGKILL three times while their events are in
//! flight, then restarted on the same state file and address. Partner Center
//! (the sandbox) retries the deliveries the dead process did not answer. In the
//! end every referral has exactly one opportunity, linked both ways, and the
//! queue holds nothing queued, running or dead.

use std::collections::BTreeMap;
use std::time::Duration;

use cosync::demo::Crm;
use serde_json::{Value, json};

use super::harness::*;

const REFERRALS: usize = 30;
const BATCHES: usize = 3;

#[test]
fn kill_9_mid_flight_loses_no_event_and_duplicates_no_opportunity() {
    let _serial = serial();
    let Pair {
        mut serve,
        sandbox,
        project,
        state,
        log: _first_log,
        dir,
    } = Pair::start(Crm::Dynamics365, as_shipped, "200ms");
    let log = |n: usize| dir.path().join(format!("serve-{n}.log"));
    let listen = serve.listen.clone();
    let rt = runtime();
    let admin = sandbox.admin();
    // Redeliveries come quickly (Partner Center's 10 attempts, 100 ms doubling
    // up to 1 s: about 6.5 s in all, longer than a restart).
    rt.block_on(async {
        admin
            .patch(
                "settings",
                &json!({"delivery": {"max_attempts": 10, "initial_backoff_ms": 100, "max_backoff_ms": 1000, "timeout_ms": 3000}}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    });
    let mut referrals = Vec::new();
    let per_batch = REFERRALS / BATCHES;
    for batch in 0..BATCHES {
        let in_flight = rt.block_on(async {
            for n in 0..per_batch {
                let name = format!("Crash safety {batch}-{n}");
                referrals.push(create_referral(&admin, &name).await);
            }
            // Kill while the batch's flows run (creates in the CRM, links back):
            // once a worker has claimed an event, a little later each time.
            let client = http();
            let seen = wait_for("an event running", T, || async {
                let (queued, running) = ready(&client, &serve.ready_url).await?;
                Ok((running > 0).then_some((queued, running)))
            })
            .await;
            tokio::time::sleep(Duration::from_millis(15 * batch as u64)).await;
            seen
        });
        serve.proc.kill9();
        let (queued, running) = in_flight;
        eprintln!("batch {batch}: killed with {queued} queued, {running} running");
        let next_log = log(batch + 1);
        // Again on the same address: the sandbox's pending retries go to the
        // URL they were queued with, as a real deployment's URL stays put.
        serve = Serve::start_registered(
            &sandbox,
            &ServeOptions {
                project: &project,
                state: &state,
                listen: &listen,
                workers: 4,
                poll: "200ms",
                log: &next_log,
            },
        );
        assert_eq!(serve.listen, listen);
    }
    assert_eq!(referrals.len(), REFERRALS);
    // At least one kill caught an event running: a restart queued it again.
    let recovered = (1..=BATCHES)
        .filter(|n| {
            std::fs::read_to_string(log(*n))
                .unwrap_or_default()
                .contains("events left running by a previous process are queued again")
        })
        .count();
    assert!(recovered >= 1, "no restart recovered a running event");

    rt.block_on(async {
        let linked = wait_for(
            "one opportunity per referral",
            Duration::from_secs(40),
            || async {
                let all = admin.get("dataverse/opportunities").await?;
                let rows = all["value"].as_array().cloned().unwrap_or_default();
                let mut by_referral: BTreeMap<String, Vec<Value>> = BTreeMap::new();
                for o in rows {
                    if let Some(r) = o["cosell_referralidentifier"].as_str() {
                        by_referral
                            .entry(r.to_string())
                            .or_default()
                            .push(o.clone());
                    }
                }
                let missing = referrals
                    .iter()
                    .filter(|r| !by_referral.contains_key(*r))
                    .count();
                if missing > 0 {
                    return Err(format!("{missing} referrals without an opportunity"));
                }
                Ok(Some(by_referral))
            },
        )
        .await;
        settle(&admin, &serve, QUIET, Duration::from_secs(30)).await;
        let all = admin
            .get("dataverse/opportunities")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let rows = all["value"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            rows.len(),
            REFERRALS,
            "exactly one opportunity per referral, none without one: {:#?}",
            rows.iter()
                .map(|o| (&o["opportunityid"], &o["cosell_referralidentifier"]))
                .collect::<Vec<_>>()
        );
        for r in &referrals {
            let opps = &linked[r];
            assert_eq!(opps.len(), 1, "referral {r}: {opps:#?}");
            let referral = admin
                .get(&format!("partner_center/referrals/{r}"))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                referral["externalReferenceId"], opps[0]["opportunityid"],
                "referral {r} points at its opportunity"
            );
        }
        let deliveries = admin
            .get("deliveries")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let failed: Vec<&Value> = deliveries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["state"] != "delivered")
            .collect();
        assert!(failed.is_empty(), "undelivered webhooks: {failed:#?}");
    });
    let c = counts(&state);
    assert_eq!(
        (c.queued, c.running, c.dead),
        (0, 0, 0),
        "every event processed: {c:?}"
    );
    let out = cosync(
        &[
            "replay",
            "--all",
            "--state",
            path(&state),
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(json_out(&out)["replayed"], json!(0));
}

/// SIGTERM while events are in flight: the service stops accepting, lets the
/// running flows finish, hands back what it claimed but did not start (a worker
/// claims its next event in the trip that ends the last one), and exits 0 with
/// no event left `running` for a restart to recover.
#[test]
fn sigterm_mid_flight_finishes_or_hands_back_every_event() {
    let _serial = serial();
    let Pair {
        mut serve,
        sandbox,
        state,
        log,
        project: _project,
        dir: _dir,
    } = Pair::start(Crm::Dynamics365, as_shipped, "200ms");
    let rt = runtime();
    let admin = sandbox.admin();
    rt.block_on(async {
        for n in 0..REFERRALS {
            create_referral(&admin, &format!("Graceful stop {n}")).await;
        }
        let client = http();
        wait_for("an event running", T, || async {
            let (_, running) = ready(&client, &serve.ready_url).await?;
            Ok((running > 0).then_some(()))
        })
        .await;
    });
    assert_eq!(
        serve.proc.terminate(Duration::from_secs(20)),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let c = counts(&state);
    assert_eq!(c.running, 0, "nothing left running: {c:?}");
    assert_eq!(c.dead, 0, "{c:?}");
    assert!(c.done > 0, "the running flows finished: {c:?}");
    // What was claimed but not started went back without spending an attempt.
    let queued = store(&state)
        .events(cosync::store::EventState::Queued, 1000)
        .unwrap_or_else(|e| panic!("{e}"));
    let spent: Vec<_> = queued
        .iter()
        .filter(|e| e.attempts != 0)
        .map(|e| (e.id, e.attempts))
        .collect();
    assert!(
        spent.is_empty(),
        "queued events with attempts spent: {spent:?}"
    );
}
