//! Dataverse change tracking tells a creation from an update although a delta
//! read returns only a row's latest state: an opportunity created and then
//! edited (in a later second) between two delta reads comes as `created`,
//! because it was created after the newest modification the earlier reads
//! returned.

use std::time::{Duration, Instant};

use cosync::demo::Crm;
use cosync::store::EventState;
use serde_json::json;

use super::harness::*;

#[test]
fn a_row_created_and_edited_between_two_delta_reads_is_a_creation() {
    let _serial = serial();
    // Delta reads 5 s apart: the creation and the edit land between two.
    let Pair {
        serve: _serve,
        sandbox,
        state,
        log,
        project: _project,
        dir: _dir,
    } = Pair::start(Crm::Dynamics365, change_tracking, "5s");
    let rt = runtime();
    let admin = sandbox.admin();
    let (opp, etag, window) = rt.block_on(async {
        wait_for("the first delta read", T, || async {
            let text = std::fs::read_to_string(&log).map_err(|e| e.to_string())?;
            Ok(text.contains("change tracking started").then_some(()))
        })
        .await;
        let read_at = Instant::now();
        let account = admin
            .post("dataverse/accounts", &json!({"name": "Wingtip Toys"}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let account = account["accountid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let opp = admin
            .post(
                "dataverse/opportunities",
                &json!({
                    "name": "Wingtip Toys - created and edited between reads",
                    "estimatedvalue": 50000,
                    "estimatedclosedate": "2027-06-30",
                    "customerid_account@odata.bind": format!("/accounts({account})"),
                    "cosell_syncwithpartnercenter": true,
                    "cosell_howcanmicrosofthelp": 100000003,
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let opp = opp["opportunityid"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {opp}"))
            .to_string();
        // Dataverse stamps whole seconds: the edit goes into a later one.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let edited = admin
            .patch(
                &format!("dataverse/opportunities({opp})"),
                &json!({"estimatedvalue": 65000}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let etag = edited["@odata.etag"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (opp, etag, read_at.elapsed())
    });
    assert!(
        window < Duration::from_secs(4),
        "creating and editing took {window:?}: the next delta read may have come between them"
    );
    let key = format!("dynamics365:opportunity:{opp}");
    let events = rt.block_on(wait_for("the opportunity's event", T, || async {
        let s = store(&state);
        let events: Vec<_> = [
            EventState::Queued,
            EventState::Running,
            EventState::Done,
            EventState::Dead,
        ]
        .iter()
        .flat_map(|st| s.events(*st, 100_000).unwrap_or_default())
        .filter(|e| e.record_key == key)
        .collect();
        Ok((!events.is_empty()).then_some(events))
    }));
    let first = events
        .iter()
        .min_by_key(|e| e.id)
        .unwrap_or_else(|| panic!("no event"));
    // One read saw both: the version is the edited one.
    assert_eq!(
        first.payload["version"].as_str(),
        Some(etag.as_str()),
        "{events:#?}"
    );
    assert_eq!(first.payload["change"], "created", "{events:#?}");
}
