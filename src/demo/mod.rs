//! The seed's two co-sell scenarios, played against a running sandbox and a
//! running `cosync serve` (in-process for `cosync demo`, separate processes in
//! the end-to-end tests). Every action is what a person does — an edit through
//! the sandbox's admin API, which fires webhooks and moves modification times
//! like a real edit — and every check waits, over HTTP, until the other system
//! shows the change.
//!
//! Scenario 1 (CRM → Partner Center): an opportunity with "Sync with Partner
//! Center" = Yes, a help option and solution ids becomes a referral; a later CRM
//! edit (deal value) updates it. Scenario 2 (Partner Center → CRM): a new
//! incoming referral becomes an opportunity with the co-sell fields filled and
//! the synced mark; accepting it with a new deal value and close date, then
//! winning it, flows back.

mod admin;
pub mod embedded;
mod scenarios;

use std::time::Duration;

use serde::Serialize;

pub use admin::Admin;
pub use scenarios::{new_deal, play};

/// The CRMs the demo plays against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Crm {
    /// Dynamics 365 (Dataverse).
    Dynamics365,
    /// Salesforce.
    Salesforce,
}

impl Crm {
    /// The display name.
    pub fn label(self) -> &'static str {
        match self {
            Crm::Dynamics365 => "Dynamics 365",
            Crm::Salesforce => "Salesforce",
        }
    }

    /// The name its flows and connector carry (`dynamics365`, `salesforce`).
    pub fn key(self) -> &'static str {
        match self {
            Crm::Dynamics365 => "dynamics365",
            Crm::Salesforce => "salesforce",
        }
    }
}

/// One checked step of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// The CRM.
    pub crm: Crm,
    /// Scenario number (1 or 2).
    pub scenario: u8,
    /// What was done.
    pub action: String,
    /// `CRM → Partner Center` or `Partner Center → CRM`.
    pub direction: String,
    /// Whether the change arrived (and looked right).
    pub ok: bool,
    /// From the edit until the other side showed it.
    #[serde(serialize_with = "millis")]
    pub took: Duration,
    /// What was checked, or why it failed.
    pub detail: String,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}
