//! The seed's two scenarios (CRM → Partner Center, Partner Center → CRM, with
//! the later edits and the closure) through `serve` + `sandbox`, per CRM.

use cosync::demo::{Crm, play};
use cosync::store::{Event, EventState};

use super::harness::*;

fn scenarios(crm: Crm) {
    scenarios_with(crm, as_shipped, false);
}

fn scenarios_with(crm: Crm, edit: impl Fn(&str, String) -> String, tracked: bool) {
    let _serial = serial();
    let Pair {
        serve,
        sandbox,
        state,
        log,
        project: _project,
        dir: _dir,
    } = Pair::start(crm, edit, "200ms");
    runtime().block_on(async {
        let admin = sandbox.admin().with_service(&serve.base);
        let steps = play(&admin, crm, T).await;
        assert_all_synced(crm.label(), &steps, &log);
        settle(&admin, &serve, QUIET, T).await;
    });
    let c = counts(&state);
    assert_eq!((c.queued, c.running, c.dead), (0, 0, 0), "{c:?}");
    assert!(c.done > 0, "{c:?}");
    if tracked {
        // The changes came through a delta link, which the store keeps.
        let link = store(&state)
            .watermark(crm.key(), "opportunity#delta")
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|(link, _)| link)
            .unwrap_or_default();
        assert!(link.contains("$deltatoken="), "{link:?}");
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(log.contains("change tracking started"), "{log}");
    }
    first_crm_event_is_a_creation(&state, crm);
}

/// Scenario 1's opportunity (the first CRM record the CRM → Partner Center
/// flow hears of: the sandbox seeds none with Sync = Yes) comes in as `created`
/// (by watermark polling and by change tracking),
/// and its later changes (the flow's own write-back, the edit) as `updated`,
/// also on Dataverse, whose whole-second stamps give a write-back within the
/// second of the creation the creation time as modification time.
fn first_crm_event_is_a_creation(state: &std::path::Path, crm: Crm) {
    let s = store(state);
    let flow = format!("{}-to-partner-center", crm.key());
    let mut events: Vec<Event> = [EventState::Done, EventState::Dead]
        .iter()
        .flat_map(|st| s.events(*st, 100_000).unwrap_or_else(|e| panic!("{e}")))
        .filter(|e| e.source == crm.key() && e.flow.as_deref() == Some(flow.as_str()))
        .collect();
    events.sort_by_key(|e| e.id);
    let Some(first) = events.first() else {
        panic!("{}: no CRM event stored", crm.label());
    };
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e.payload["record_id"] == first.payload["record_id"])
        .map(|e| e.payload["change"].as_str().unwrap_or_default())
        .collect();
    assert!(
        matches!(kinds.as_slice(), ["created", rest @ ..] if !rest.is_empty() && rest.iter().all(|k| *k == "updated")),
        "{}: {kinds:?}",
        crm.label()
    );
}

#[test]
fn dynamics365_scenarios_sync_through_serve_and_sandbox() {
    scenarios(Crm::Dynamics365);
}

#[test]
fn salesforce_scenarios_sync_through_serve_and_sandbox() {
    scenarios(Crm::Salesforce);
}

#[test]
fn dynamics365_scenarios_sync_with_change_tracking() {
    // The first CRM event is a creation here too: the opportunity was created
    // after the newest modification the earlier delta reads returned.
    scenarios_with(Crm::Dynamics365, change_tracking, true);
}
