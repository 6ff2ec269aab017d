//! cosync keeps Microsoft Partner Center co-sell referrals and CRM opportunities
//! (Dynamics 365 / Dataverse, Salesforce) in two-way sync, driven by declarative
//! YAML.
//!
//! The pipeline, one module per stage:
//!
//! 1. [`source`] — YAML text → located values (every node knows `file:line:col`).
//! 2. [`spec`] — the typed model of every file kind (and its JSON Schema).
//! 3. [`validate`] — JSON Schema check + semantic lints → [`validate::ValidProject`].
//!
//! [`diag`] holds the diagnostics every stage reports; [`cli`] the commands.

pub mod cli;
pub mod compile;
pub mod connector;
pub mod demo;
pub mod diag;
pub mod domain;
pub mod expr;
pub mod flowtest;
pub mod mapping;
pub mod record;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod service;
pub mod source;
pub mod spec;
pub mod store;
pub mod validate;
