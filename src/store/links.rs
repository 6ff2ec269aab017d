//! Links between referrals and CRM records, with the last synced values of both
//! sides (the base of three-way merges), and conflicts parked for a person.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError, json, now};
use crate::mapping::Base;

/// A referral linked to a CRM record through a mapping table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    /// The mapping table.
    pub mapping: String,
    /// Partner Center referral id.
    pub referral_id: String,
    /// CRM record id (None while a create is in flight).
    pub crm_id: Option<String>,
    /// Last synced values of every row, both sides.
    pub base: Base,
    /// When it was last synced.
    pub synced_at: String,
}

/// A row changed on both sides, parked for `cosync conflicts resolve`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    /// Id.
    pub id: i64,
    /// Mapping table.
    pub mapping: String,
    /// Referral.
    pub referral_id: String,
    /// CRM record.
    pub crm_id: Option<String>,
    /// Row label.
    pub field: String,
    /// The referral's value.
    pub partner_center: Value,
    /// The CRM record's value.
    pub crm: Value,
    /// The last synced values, if any.
    pub base: Option<Value>,
    /// When it was parked.
    pub created_at: String,
    /// When it was resolved.
    pub resolved_at: Option<String>,
    /// `partner_center` or `crm`.
    pub resolution: Option<String>,
}

fn row_to_link(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Link, String)> {
    Ok((
        Link {
            mapping: r.get(0)?,
            referral_id: r.get(1)?,
            crm_id: r.get(2)?,
            base: Base::new(),
            synced_at: r.get(4)?,
        },
        r.get(3)?,
    ))
}

fn finish_link((mut link, base): (Link, String)) -> Result<Link, StoreError> {
    link.base = json("link base", &base)?;
    Ok(link)
}

impl Store {
    /// The link of a referral.
    pub fn link_by_referral(
        &self,
        mapping: &str,
        referral_id: &str,
    ) -> Result<Option<Link>, StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached("SELECT mapping, referral_id, crm_id, base, synced_at FROM links WHERE mapping = ?1 AND referral_id = ?2")?.query_row(params![mapping, referral_id],
            row_to_link,
        )
        .optional()?
        .map(finish_link)
        .transpose()
    }

    /// The link of a CRM record.
    pub fn link_by_crm(&self, mapping: &str, crm_id: &str) -> Result<Option<Link>, StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached("SELECT mapping, referral_id, crm_id, base, synced_at FROM links WHERE mapping = ?1 AND crm_id = ?2")?.query_row(params![mapping, crm_id],
            row_to_link,
        )
        .optional()?
        .map(finish_link)
        .transpose()
    }

    /// Creates or replaces the link of a referral with its new base.
    pub fn save_link(
        &self,
        mapping: &str,
        referral_id: &str,
        crm_id: Option<&str>,
        base: &Base,
    ) -> Result<(), StoreError> {
        let base = serde_json::to_string(base).map_err(|source| StoreError::Json {
            what: "link base",
            source,
        })?;
        let conn = self.conn()?;
        // The CRM id is set apart and only when it changes: an update that assigns
        // an indexed column rewrites its entry in `links_crm` even when the value
        // stays the same (a page at a random place per synced change).
        conn.prepare_cached("INSERT INTO links (mapping, referral_id, crm_id, base, synced_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (mapping, referral_id) DO UPDATE SET base = excluded.base, synced_at = excluded.synced_at")?.execute(params![mapping, referral_id, crm_id, base, now()])?;
        conn.prepare_cached(
            "UPDATE links SET crm_id = ?3 WHERE mapping = ?1 AND referral_id = ?2 AND crm_id IS NOT ?3",
        )?
        .execute(params![mapping, referral_id, crm_id])?;
        Ok(())
    }

    /// Every link of a mapping.
    pub fn links(&self, mapping: &str) -> Result<Vec<Link>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT mapping, referral_id, crm_id, base, synced_at FROM links WHERE mapping = ?1 ORDER BY referral_id")?;
        let rows = stmt.query_map(params![mapping], row_to_link)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(finish_link(r?)?);
        }
        Ok(out)
    }

    /// Parks a conflict; returns its id.
    pub fn park_conflict(
        &self,
        mapping: &str,
        referral_id: &str,
        crm_id: Option<&str>,
        c: &crate::mapping::Conflict,
    ) -> Result<i64, StoreError> {
        let conn = self.conn()?;
        let base = c
            .base
            .as_ref()
            .map(|b| serde_json::to_string(b).unwrap_or_default());
        conn.prepare_cached("INSERT INTO conflicts (mapping, referral_id, crm_id, field, partner_center, crm, base, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?.execute(params![mapping, referral_id, crm_id, c.label, c.partner_center.to_string(), c.crm.to_string(), base, now()])?;
        Ok(conn.last_insert_rowid())
    }

    /// Conflicts, unresolved first.
    pub fn conflicts(&self, include_resolved: bool) -> Result<Vec<Conflict>, StoreError> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT id, mapping, referral_id, crm_id, field, partner_center, crm, base, created_at, resolved_at, resolution FROM conflicts {} ORDER BY id",
            if include_resolved {
                ""
            } else {
                "WHERE resolved_at IS NULL"
            }
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, Option<String>>(10)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (
                id,
                mapping,
                referral_id,
                crm_id,
                field,
                pc,
                crm,
                base,
                created_at,
                resolved_at,
                resolution,
            ) = r?;
            out.push(Conflict {
                id,
                mapping,
                referral_id,
                crm_id,
                field,
                partner_center: json("conflict value", &pc)?,
                crm: json("conflict value", &crm)?,
                base: base.map(|b| json("conflict base", &b)).transpose()?,
                created_at,
                resolved_at,
                resolution,
            });
        }
        Ok(out)
    }

    /// Marks a conflict resolved in favour of `side`.
    pub fn resolve_conflict(&self, id: i64, side: &str) -> Result<Conflict, StoreError> {
        let changed = self.conn()?.prepare_cached("UPDATE conflicts SET resolved_at = ?2, resolution = ?3 WHERE id = ?1 AND resolved_at IS NULL")?.execute(params![id, now(), side])?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!(
                "no open conflict with id {id}"
            )));
        }
        self.conflicts(true)?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("conflict {id}")))
    }
}
