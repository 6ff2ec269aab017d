//! Three-way merge of a referral and a CRM record against the values last synced
//! (the base): per row, which side changed, and for rows changed on both sides the
//! row's conflict policy (or a reported conflict for `manual`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::coerce::same;
use super::{Change, Lookups, MapError, Projector, read_row};
use crate::spec::common::{ConflictPolicy, Direction, Side};

/// The raw values of one row on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowValues {
    /// As read from the referral.
    pub partner_center: Value,
    /// As read from the CRM record.
    pub crm: Value,
}

/// The last synced values of every row, by row label.
pub type Base = BTreeMap<String, RowValues>;

/// A row changed on both sides with no automatic winner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    /// The row's label.
    pub label: String,
    /// The referral's value.
    pub partner_center: Value,
    /// The CRM record's value.
    pub crm: Value,
    /// The last synced values, if any.
    pub base: Option<RowValues>,
}

/// What a three-way merge decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Merge {
    /// Fields to write to the CRM record.
    pub to_crm: Vec<Change>,
    /// Fields to write to the referral.
    pub to_partner_center: Vec<Change>,
    /// Rows parked for a person.
    pub conflicts: Vec<Conflict>,
    /// Rows [`merge_toward`] leaves to the other direction: only the target side
    /// changed since the base, so the target's value wins and is not overwritten.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
}

/// The base to store after a successful sync of `pc` and `crm`.
pub fn snapshot(projector: &Projector<'_>, pc: &Value, crm: &Value) -> Base {
    projector
        .mapping
        .rows
        .iter()
        .map(|row| {
            (
                row.label.clone(),
                RowValues {
                    partner_center: read_row(row, Side::PartnerCenter, pc),
                    crm: read_row(row, Side::Crm, crm),
                },
            )
        })
        .collect()
}

/// Merges `pc` and `crm` against `base`. `newer` says which record changed last
/// (for the `newest` policy; Partner Center when unknown).
pub fn merge(
    projector: &Projector<'_>,
    pc: &Value,
    crm: &Value,
    base: Option<&Base>,
    lookups: &dyn Lookups,
    newer: Option<Side>,
) -> Result<Merge, MapError> {
    let mut out = Merge::default();
    for (index, row) in projector.mapping.rows.iter().enumerate() {
        let to_crm = diff_one(projector, index, Side::Crm, pc, crm, lookups)?;
        let to_pc = diff_one(projector, index, Side::PartnerCenter, crm, pc, lookups)?;
        if to_crm.is_empty() && to_pc.is_empty() {
            continue;
        }
        match row.direction {
            Direction::ToCrm => out.to_crm.extend(to_crm),
            Direction::ToPartnerCenter => out.to_partner_center.extend(to_pc),
            Direction::Both => match winner(row, pc, crm, base, newer) {
                Ok(Side::PartnerCenter) => out.to_crm.extend(to_crm),
                Ok(Side::Crm) => out.to_partner_center.extend(to_pc),
                Err(conflict) => out.conflicts.push(*conflict),
            },
        }
    }
    Ok(out)
}

/// A three-way merge for one direction: the changes to write to `target`, the
/// rows whose newer value is the target's own (`pending`, for the flow of the
/// other direction), and the conflicts. Only `target`'s projection is computed,
/// so only its lookups need resolving.
pub fn merge_toward(
    projector: &Projector<'_>,
    pc: &Value,
    crm: &Value,
    base: Option<&Base>,
    lookups: &dyn Lookups,
    newer: Option<Side>,
    target: Side,
) -> Result<Merge, MapError> {
    let mut out = Merge::default();
    let (source, current) = match target {
        Side::Crm => (pc, crm),
        Side::PartnerCenter => (crm, pc),
    };
    for (index, row) in projector.mapping.rows.iter().enumerate() {
        let writes_target = match row.direction {
            Direction::ToCrm => target == Side::Crm,
            Direction::ToPartnerCenter => target == Side::PartnerCenter,
            Direction::Both => true,
        };
        if !writes_target {
            continue;
        }
        let changes = diff_one(projector, index, target, source, current, lookups)?;
        if changes.is_empty() {
            continue;
        }
        let into = match target {
            Side::Crm => &mut out.to_crm,
            Side::PartnerCenter => &mut out.to_partner_center,
        };
        if row.direction != Direction::Both {
            into.extend(changes);
            continue;
        }
        match winner(row, pc, crm, base, newer) {
            Ok(w) if w != target => into.extend(changes),
            Ok(_) => out.pending.push(row.label.clone()),
            Err(conflict) => out.conflicts.push(*conflict),
        }
    }
    Ok(out)
}

/// Whose value a two-way row takes: the side that changed since the base (both
/// when there is no base), else — both changed — the row's conflict policy;
/// `Err` with the conflict to park under `manual`.
fn winner(
    row: &crate::compile::mapping::CompiledRow,
    pc: &Value,
    crm: &Value,
    base: Option<&Base>,
    newer: Option<Side>,
) -> Result<Side, Box<Conflict>> {
    let base_row = base.and_then(|b| b.get(&row.label));
    let pc_now = read_row(row, Side::PartnerCenter, pc);
    let crm_now = read_row(row, Side::Crm, crm);
    let pc_changed =
        base_row.is_none_or(|b| !same(row.ty, &pc_now, &b.partner_center, &row.separator));
    let crm_changed = base_row.is_none_or(|b| !same(row.ty, &crm_now, &b.crm, &row.separator));
    match (pc_changed, crm_changed) {
        (true, false) => Ok(Side::PartnerCenter),
        (false, true) => Ok(Side::Crm),
        _ => match row.conflict {
            ConflictPolicy::PartnerCenter => Ok(Side::PartnerCenter),
            ConflictPolicy::Crm => Ok(Side::Crm),
            ConflictPolicy::Newest => Ok(newer.unwrap_or(Side::PartnerCenter)),
            ConflictPolicy::Manual => Err(Box::new(Conflict {
                label: row.label.clone(),
                partner_center: pc_now,
                crm: crm_now,
                base: base_row.cloned(),
            })),
        },
    }
}

fn diff_one(
    projector: &Projector<'_>,
    index: usize,
    target: Side,
    source: &Value,
    current: &Value,
    lookups: &dyn Lookups,
) -> Result<Vec<Change>, MapError> {
    let writes = projector.project_one(index, target, source, lookups)?;
    let projected = super::Projected { target, writes };
    Ok(projector.diff(&projected, current))
}
