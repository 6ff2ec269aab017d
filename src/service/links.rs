//! The link table as runs use it: before a run, the sync bases of the record its
//! trigger names (by referral id for Partner Center events, by CRM record id for
//! CRM changes); after a successful run, the new bases its `diff` steps learnt
//! and the conflicts they parked. Shared by the workers and `cosync sync --full`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::compile::CompiledProject;
use crate::mapping::Base;
use crate::record::RecordingObserver;
use crate::runtime::observer::CallRecord;
use crate::runtime::{RunObserver, StepRecord, SyncedPair, WriteRecord};
use crate::store::{Store, StoreError};

/// The names of a project's mapping tables (what [`bases`] looks up).
pub fn mapping_names(project: &CompiledProject) -> Vec<String> {
    project.mappings.iter().map(|m| m.name.clone()).collect()
}

/// The sync bases of the record `trigger` is about, by mapping.
pub fn bases(
    s: &Store,
    mappings: &[String],
    trigger: &Value,
) -> Result<BTreeMap<String, Base>, StoreError> {
    let referral = trigger.get("resource_id").and_then(Value::as_str);
    let crm = trigger.get("record_id").and_then(Value::as_str);
    let mut out = BTreeMap::new();
    for m in mappings {
        let link = match (referral, crm) {
            (Some(r), _) => s.link_by_referral(m, r)?,
            (None, Some(c)) => s.link_by_crm(m, c)?,
            (None, None) => None,
        };
        if let Some(link) = link {
            out.insert(m.clone(), link.base);
        }
    }
    Ok(out)
}

/// Stores the new bases of a successful run and parks its conflicts (once per
/// open conflict of a field).
pub fn save(s: &Store, pairs: &[SyncedPair]) -> Result<(), StoreError> {
    for p in pairs {
        let Some(referral) = p.referral_id.as_deref() else {
            continue;
        };
        if let Err(e) = s.save_link(&p.mapping, referral, p.crm_id.as_deref(), &p.base) {
            tracing::warn!(
                referral,
                crm = p.crm_id.as_deref().unwrap_or("-"),
                "cannot save the link: {e}"
            );
        }
        if p.conflicts.is_empty() {
            continue;
        }
        let open = s.conflicts(false)?;
        for c in &p.conflicts {
            let parked = open
                .iter()
                .any(|o| o.mapping == p.mapping && o.referral_id == referral && o.field == c.label);
            if !parked {
                let id = s.park_conflict(&p.mapping, referral, p.crm_id.as_deref(), c)?;
                tracing::warn!(conflict = id, referral, field = %c.label, "conflict parked for a person (`cosync conflicts`)");
            }
        }
    }
    Ok(())
}

/// Records a run and collects what its `diff` steps learnt about linked pairs.
#[derive(Default)]
pub struct PairObserver {
    /// The run record being built.
    pub record: RecordingObserver,
    /// The pairs synced, for [`save`].
    pub pairs: Vec<SyncedPair>,
}

impl RunObserver for PairObserver {
    fn step(&mut self, record: StepRecord) {
        self.record.step(record);
    }
    fn write(&mut self, record: WriteRecord) {
        self.record.write(record);
    }
    fn call(&mut self, record: CallRecord) {
        self.record.call(record);
    }
    fn synced(&mut self, pair: SyncedPair) {
        self.pairs.push(pair);
    }
}
