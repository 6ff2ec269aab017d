//! End-to-end tests of the sandbox (`cosync sandbox`): every emulated service over real
//! HTTP on 127.0.0.1, started in-process through the library API (and once as the real
//! binary). One test per documented behaviour; modules under `tests/sandbox/`.

#[path = "sandbox/support.rs"]
mod support;

#[path = "sandbox/admin.rs"]
mod admin;
#[path = "sandbox/bad_input.rs"]
mod bad_input;
#[path = "sandbox/binary.rs"]
mod binary;
#[path = "sandbox/dataverse.rs"]
mod dataverse;
#[path = "sandbox/faults.rs"]
mod faults;
#[path = "sandbox/identity.rs"]
mod identity;
#[path = "sandbox/partner_center.rs"]
mod partner_center;
#[path = "sandbox/persistence.rs"]
mod persistence;
#[path = "sandbox/salesforce.rs"]
mod salesforce;
#[path = "sandbox/webhooks.rs"]
mod webhooks;
