//! Duplicate and out-of-order webhook deliveries: a delivery the service
//! already stored, posted again byte for byte with the headers it was signed
//! with, is answered 200 `duplicate` and stores, runs and writes nothing; an
//! older event that arrives after a newer one runs (it is news to the service)
//! but the flow reads the referral as it is now, so it writes nothing.

use cosync::demo::{Admin, Crm};
use serde_json::{Value, json};

use super::harness::*;

/// The sandbox's delivery records.
async fn deliveries(admin: &Admin) -> Vec<Value> {
    match admin.get("deliveries").await {
        Ok(Value::Array(a)) => a,
        other => panic!("deliveries: {other:?}"),
    }
}

/// Posts a recorded delivery to `url` again: the same body, the same headers.
async fn redeliver(client: &reqwest::Client, url: &str, delivery: &Value) -> (u16, Value) {
    let body = serde_json::to_string(&delivery["body"]).unwrap_or_else(|e| panic!("{e}"));
    let headers = delivery["headers"]
        .as_object()
        .unwrap_or_else(|| panic!("the delivery records no headers: {delivery}"));
    let mut request = client.post(url).body(body);
    for (k, v) in headers {
        request = request.header(k.as_str(), v.as_str().unwrap_or_default());
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = response.status().as_u16();
    let answer = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, answer)
}

/// The number of runs `cosync runs list` shows.
fn runs(state: &std::path::Path) -> usize {
    let v = json_out(&cosync(
        &[
            "runs",
            "list",
            "--state",
            path(state),
            "--limit",
            "100000",
            "--format",
            "json",
        ],
        None,
    ));
    v["runs"].as_array().map_or(0, Vec::len)
}

/// The referral's delivery records of one event, oldest first.
fn of_referral<'a>(all: &'a [Value], referral: &str, event: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|d| d["event"] == event)
        .filter(|d| {
            d["resource_uri"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/referrals/{referral}")))
        })
        .collect()
}

#[test]
fn redeliveries_and_late_older_events_change_nothing() {
    let _serial = serial();
    let Pair {
        serve,
        sandbox,
        project,
        state,
        log: _log,
        dir: _dir,
    } = Pair::start(Crm::Dynamics365, as_shipped, "200ms");
    runtime().block_on(async {
        let admin = sandbox.admin();
        let client = http();
        let (referral, opp) = synced_pair(&admin, &serve, "Redeliveries").await;

        // --- the same delivery twice -------------------------------------------
        let all = deliveries(&admin).await;
        let created = of_referral(&all, &referral, "referral-created");
        assert_eq!(created.len(), 1, "{all:#?}");
        assert_eq!(created[0]["state"], "delivered", "{:#}", created[0]);
        let updates = of_referral(&all, &referral, "referral-updated");
        let newest = updates
            .last()
            .copied()
            .unwrap_or_else(|| panic!("{all:#?}"));
        let events = counts(&state);
        let run_count = runs(&state);
        let seq = last_write_seq(&admin).await;
        // Newest first, then the older ones: out of order, and all seen before.
        let mut again: Vec<&Value> = vec![newest];
        again.extend(updates.iter().rev().skip(1));
        again.push(created[0]);
        for d in again {
            let (status, answer) = redeliver(&client, &serve.webhook_url, d).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["duplicate"], json!(true), "{answer}");
        }
        settle(&admin, &serve, QUIET, T).await;
        assert_eq!(counts(&state), events, "nothing new stored");
        assert_eq!(runs(&state), run_count, "nothing ran");
        let late = writes_since(&admin, seq).await;
        assert!(late.is_empty(), "{:#?}", describe(&late));

        // --- a newer event, then an older one the service never saw ---------------
        // Deliveries fail once (nobody listens), so the test holds both events.
        admin
            .patch("settings", &json!({"delivery": {"max_attempts": 1}}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let nobody = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("{e}"));
        register(
            &sandbox,
            &project,
            &format!("http://{nobody}/webhooks/partner-center"),
        );
        for value in [111000, 122000] {
            admin
                .patch(
                    &format!("partner_center/referrals/{referral}"),
                    &json!({"details": {"dealValue": value}}),
                )
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let (older, newer) = wait_for("two failed deliveries", T, || async {
            let all = deliveries(&admin).await;
            let failed: Vec<Value> = of_referral(&all, &referral, "referral-updated")
                .into_iter()
                .filter(|d| d["state"] == "failed")
                .cloned()
                .collect();
            Ok((failed.len() == 2).then(|| (failed[0].clone(), failed[1].clone())))
        })
        .await;
        assert!(
            older["body"]["ResourceChangeUtcDate"].as_str()
                < newer["body"]["ResourceChangeUtcDate"].as_str(),
            "{older:#}\n{newer:#}"
        );
        register(&sandbox, &project, &serve.webhook_url);

        let (status, answer) = redeliver(&client, &serve.webhook_url, &newer).await;
        assert_eq!(status, 202, "{answer}");
        wait_for("the newer value in the CRM", T, || async {
            let o = admin
                .get(&format!("dataverse/opportunities({opp})"))
                .await?;
            Ok((number(&o, "/estimatedvalue") == Some(122000.0)).then_some(()))
        })
        .await;
        settle(&admin, &serve, QUIET, T).await;
        let seq = last_write_seq(&admin).await;
        let before = counts(&state);

        let (status, answer) = redeliver(&client, &serve.webhook_url, &older).await;
        assert_eq!(status, 202, "news to the service: {answer}");
        settle(&admin, &serve, QUIET, T).await;
        let after = counts(&state);
        assert_eq!(after.total(), before.total() + 1, "{before:?} {after:?}");
        assert_eq!((after.queued, after.running, after.dead), (0, 0, 0));
        let late = writes_since(&admin, seq).await;
        assert!(
            late.is_empty(),
            "the older event wrote: {:#?}",
            describe(&late)
        );
        let o = admin
            .get(&format!("dataverse/opportunities({opp})"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(number(&o, "/estimatedvalue"), Some(122000.0));
        let r = admin
            .get(&format!("partner_center/referrals/{referral}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(number(&r, "/details/dealValue"), Some(122000.0));

        // And both once more: duplicates now.
        let stored = counts(&state);
        for d in [&older, &newer] {
            let (status, answer) = redeliver(&client, &serve.webhook_url, d).await;
            assert_eq!(
                (status, &answer["duplicate"]),
                (200, &json!(true)),
                "{answer}"
            );
        }
        assert_eq!(counts(&state), stored);
        let late = writes_since(&admin, seq).await;
        assert!(late.is_empty(), "{:#?}", describe(&late));
    });
}
