//! Seed documents: records per service and entity, applied at start (`--seed DIR`, every
//! `*.json` file in name order, on an empty state) and by `POST /_sandbox/seed`.
//!
//! ```json
//! {
//!   "partner_center": {
//!     "referrals": [{"id": "…optional…", "name": "Contoso", "status": "New", "substatus": "Pending"}],
//!     "webhook": {"WebhookUrl": "http://127.0.0.1:9000/events", "WebhookEvents": ["referral-created"]}
//!   },
//!   "dataverse": {"accounts": [{"accountid": "…optional…", "name": "Contoso"}]},
//!   "salesforce": {"Account": [{"Id": "…optional…", "Name": "Contoso"}]}
//! }
//! ```
//!
//! Records use the services' own request shapes (Dataverse lookups with `@odata.bind`).
//! Seeding raises no webhook events. A seed is applied whole or not at all.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::dataverse;
use super::referral::{self, Actor};
use super::salesforce::{ids, record, schema};
use super::stamp;
use super::state::{Core, ns};

/// One seed document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Referrals and the webhook registration.
    #[serde(default)]
    pub partner_center: PartnerCenterSeed,
    /// Dataverse rows by entity set name (`opportunities`, `accounts`, …).
    #[serde(default)]
    pub dataverse: BTreeMap<String, Vec<Value>>,
    /// Salesforce records by sObject name (`Opportunity`, `Account`, …).
    #[serde(default)]
    pub salesforce: BTreeMap<String, Vec<Value>>,
}

/// The Partner Center part of a seed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerCenterSeed {
    /// Referrals (an `id`, `createdDateTime` and `updatedDateTime` may be given).
    #[serde(default)]
    pub referrals: Vec<Value>,
    /// A webhook registration (`WebhookUrl`, `WebhookEvents`).
    #[serde(default)]
    pub webhook: Option<Value>,
}

/// Reads every `*.json` seed file of a folder, in name order.
pub(crate) fn load_dir(dir: &Path) -> Result<Vec<Seed>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

/// How many records a seed added.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Applied {
    pub(crate) referrals: usize,
    pub(crate) dataverse: usize,
    pub(crate) salesforce: usize,
}

/// Applies a seed, all or nothing.
pub(crate) fn apply(core: &mut Core, seed: &Seed) -> Result<Applied, String> {
    let snapshot = (
        core.referrals.clone(),
        core.registration.clone(),
        core.dataverse.clone(),
        core.tombstones.clone(),
        core.salesforce.clone(),
        core.counters.clone(),
        core.pending_mark(),
    );
    core.seeding = true;
    let result = apply_all(core, seed);
    core.seeding = false;
    if result.is_err() {
        core.referrals = snapshot.0;
        core.registration = snapshot.1;
        core.dataverse = snapshot.2;
        core.tombstones = snapshot.3;
        core.salesforce = snapshot.4;
        core.counters = snapshot.5;
        core.rollback_pending(snapshot.6);
    }
    result
}

fn apply_all(core: &mut Core, seed: &Seed) -> Result<Applied, String> {
    let mut applied = Applied::default();
    for (index, input) in seed.partner_center.referrals.iter().enumerate() {
        seed_referral(core, input)
            .map_err(|e| format!("partner_center referrals[{index}]: {e}"))?;
        applied.referrals += 1;
    }
    if let Some(webhook) = &seed.partner_center.webhook {
        let url = webhook
            .get("WebhookUrl")
            .and_then(Value::as_str)
            .ok_or("partner_center webhook: WebhookUrl is required")?;
        let events = webhook
            .get("WebhookEvents")
            .and_then(Value::as_array)
            .ok_or("partner_center webhook: WebhookEvents is required")?;
        let registration = json!({
            "SubscriberId": uuid::Uuid::new_v4().to_string(),
            "WebhookUrl": url,
            "WebhookEvents": events,
            "SignatureTokenToMsSignatureHeader": webhook.get("SignatureTokenToMsSignatureHeader").cloned().unwrap_or(json!(false)),
        });
        core.persist(ns::REGISTRATION, "current", &registration);
        core.registration = Some(registration);
    }
    for (set, records) in &seed.dataverse {
        applied.dataverse += dataverse::apply_seed(core, set, records)?;
    }
    for (name, records) in &seed.salesforce {
        let sobject =
            schema::by_name(name).ok_or_else(|| format!("salesforce: unknown sObject '{name}'"))?;
        for (index, input) in records.iter().enumerate() {
            seed_salesforce(core, sobject, input)
                .map_err(|e| format!("salesforce {name}[{index}]: {e}"))?;
            applied.salesforce += 1;
        }
    }
    Ok(applied)
}

fn seed_referral(core: &mut Core, input: &Value) -> Result<(), String> {
    let mut body = input.clone();
    let mut fixed = serde_json::Map::new();
    if let Some(map) = body.as_object_mut() {
        for key in ["id", "createdDateTime", "updatedDateTime"] {
            if let Some(value) = map.remove(key) {
                fixed.insert(key.to_owned(), value);
            }
        }
    }
    let written = referral::create(core, &body, Actor::User).map_err(|e| e.message)?;
    let generated = written.referral["id"].as_str().unwrap_or("").to_owned();
    let mut stored = written.referral;
    let id = match fixed.get("id").and_then(Value::as_str) {
        Some(id) => {
            if core.referrals.contains_key(id) && id != generated {
                return Err(format!("a referral with id '{id}' already exists"));
            }
            id.to_owned()
        }
        None => generated.clone(),
    };
    for (key, value) in fixed {
        stored[key] = value;
    }
    core.referrals.remove(&generated);
    core.unpersist(ns::REFERRAL, &generated);
    core.persist(ns::REFERRAL, &id, &stored);
    core.referrals.insert(id, stored);
    Ok(())
}

/// Seeded records keep the audit timestamps the seed gives them.
fn keep_salesforce_stamps(core: &mut Core, sobject: &schema::SObject, id: &str, input: &Value) {
    let Some(record) = core
        .salesforce
        .get_mut(sobject.name)
        .and_then(|t| t.get_mut(id))
    else {
        return;
    };
    for field in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        if let Some(time) = input
            .get(field)
            .and_then(Value::as_str)
            .and_then(stamp::parse)
        {
            record.insert(field.to_owned(), json!(stamp::salesforce(time)));
        }
    }
    let snapshot = Value::Object(record.clone());
    core.persist(&ns::salesforce(sobject.name), id, &snapshot);
}

fn seed_salesforce(
    core: &mut Core,
    sobject: &'static schema::SObject,
    input: &Value,
) -> Result<(), String> {
    let wanted = input.get("Id").and_then(Value::as_str).map(|id| {
        ids::normalize(id)
            .filter(|id| id.starts_with(sobject.prefix))
            .ok_or_else(|| format!("'{id}' is not a {} id", sobject.name))
    });
    let wanted = wanted.transpose()?;
    let mut body = input.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("Id");
    }
    if let Some(id) = &wanted
        && record::lookup(core, sobject.name, id).is_some()
    {
        record::update(core, sobject, id, &body, Actor::User).map_err(|e| e.message)?;
        return Ok(());
    }
    let generated =
        record::create(core, sobject, &body, None, Actor::User).map_err(|e| e.message)?;
    keep_salesforce_stamps(core, sobject, &generated, input);
    if let Some(id) = wanted {
        let table = core.salesforce.entry(sobject.name.to_owned()).or_default();
        if let Some(mut stored) = table.remove(&generated) {
            stored.insert("Id".into(), json!(id));
            table.insert(id.clone(), stored.clone());
            core.unpersist(&ns::salesforce(sobject.name), &generated);
            core.persist(&ns::salesforce(sobject.name), &id, &Value::Object(stored));
        }
    }
    Ok(())
}
