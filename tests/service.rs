//! The sync service end to end: `cosync sandbox` and `cosync serve` as separate
//! processes of the real binary, talking real HTTP on 127.0.0.1, with the state
//! in a real SQLite file. Each test starts both processes (killed when the test
//! ends, whatever happens), registers the webhook, and checks one promise of
//! product.md §6: the seed's scenarios for both CRMs, loop convergence,
//! duplicate and out-of-order deliveries, crash safety under `kill -9`, manual
//! conflicts, faults and dead letters, bad webhooks, the record mirror, Dataverse
//! webhooks, and creations seen through Dataverse change tracking.
//!
//! Helpers are in `tests/service/harness.rs`; one module per promise.

#[path = "service/harness.rs"]
mod harness;

#[path = "service/bad_webhooks.rs"]
mod bad_webhooks;
#[path = "service/conflicts.rs"]
mod conflicts;
#[path = "service/crash.rs"]
mod crash;
#[path = "service/deliveries.rs"]
mod deliveries;
#[path = "service/faults.rs"]
mod faults;
#[path = "service/loops.rs"]
mod loops;
#[path = "service/mirror.rs"]
mod mirror;
#[path = "service/push.rs"]
mod push;
#[path = "service/scenarios.rs"]
mod scenarios;
#[path = "service/tracking.rs"]
mod tracking;
