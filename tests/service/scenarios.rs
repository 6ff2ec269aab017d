//! The seed's two scenarios (CRM → Partner Center, Partner Center → CRM, with
//! the later edits and the closure) through `serve` + `sandbox`, per CRM.

use cosync::demo::{Crm, play};

use super::harness::*;

fn scenarios(crm: Crm) {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let project = project(dir.path(), crm, as_shipped);
    let state = dir.path().join("state.db");
    let sandbox = Sandbox::start(dir.path());
    let serve = Serve::start_registered(
        &sandbox,
        &ServeOptions {
            project: &project,
            state: &state,
            listen: "127.0.0.1:0",
            workers: 4,
            poll: "200ms",
            log: &dir.path().join("serve.log"),
        },
    );
    runtime().block_on(async {
        let admin = sandbox.admin().with_service(&serve.base);
        let steps = play(&admin, crm, T).await;
        let failed: Vec<String> = steps
            .iter()
            .filter(|s| !s.ok)
            .map(|s| format!("{} {}: {}", s.scenario, s.action, s.detail))
            .collect();
        assert!(
            failed.is_empty(),
            "{} failed: {failed:#?}\nserve log:\n{}",
            crm.label(),
            std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
        );
        // Scenario 1: created + edited; scenario 2: shared, accepted, won.
        assert_eq!(steps.len(), 5, "{steps:#?}");
        settle(&admin, &serve, QUIET, T).await;
    });
    let c = counts(&state);
    assert_eq!((c.queued, c.running, c.dead), (0, 0, 0), "{c:?}");
    assert!(c.done > 0, "{c:?}");
}

#[test]
fn dynamics365_scenarios_sync_through_serve_and_sandbox() {
    scenarios(Crm::Dynamics365);
}

#[test]
fn salesforce_scenarios_sync_through_serve_and_sandbox() {
    scenarios(Crm::Salesforce);
}
