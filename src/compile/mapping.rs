//! Mapping tables and value maps, compiled: JSONPaths parsed, templates compiled,
//! value maps turned into lookup tables for each direction, names resolved to ids.

use std::collections::HashMap;

use serde_json::Value;

use super::{CompileError, ConnectorId, ValueMapId};
use crate::expr::CompiledPath;
use crate::expr::value::{CompiledText, Env};
use crate::mapping::coerce::scalar_text;
use crate::spec::common::{ConflictPolicy, Direction, Side};
use crate::spec::mapping::{FieldRow, FieldType, LookupSpec, MappingSpec, ValueMapSpec};

/// One side of a mapping table.
#[derive(Debug, Clone)]
pub struct SideRef {
    /// Connector id.
    pub connector: ConnectorId,
    /// Entity name.
    pub entity: String,
}

/// A compiled mapping table.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    /// Name.
    pub name: String,
    /// Partner Center side.
    pub partner_center: SideRef,
    /// CRM side.
    pub crm: SideRef,
    /// CRM field holding the referral id.
    pub link_crm: Option<String>,
    /// Referral path holding the CRM id.
    pub link_partner_center: Option<CompiledPath>,
    /// Default conflict policy.
    pub conflict: ConflictPolicy,
    /// Rows.
    pub rows: Vec<CompiledRow>,
}

impl CompiledMapping {
    /// The side a connector is on, if either.
    pub fn side_of(&self, connector: ConnectorId) -> Option<Side> {
        if self.partner_center.connector == connector {
            Some(Side::PartnerCenter)
        } else if self.crm.connector == connector {
            Some(Side::Crm)
        } else {
            None
        }
    }
}

/// A compiled row.
#[derive(Debug, Clone)]
pub struct CompiledRow {
    /// Label (diffs, audit, errors).
    pub label: String,
    /// Type.
    pub ty: FieldType,
    /// Direction, with `read_only` folded in.
    pub direction: Direction,
    /// Partner Center paths (one, or several for a composite).
    pub partner_center: Vec<CompiledPath>,
    /// CRM fields (one, or several for a composite).
    pub crm: Vec<String>,
    /// Whether each CRM field stores lists as text.
    pub crm_as_text: bool,
    /// Value map.
    pub value_map: Option<ValueMapId>,
    /// Lookup.
    pub lookup: Option<CompiledLookup>,
    /// Computed value.
    pub value: Option<CompiledText>,
    /// Template towards the CRM.
    pub transform: Option<CompiledText>,
    /// Template towards Partner Center.
    pub reverse: Option<CompiledText>,
    /// Default when the source has no value.
    pub default: Option<Value>,
    /// The source must have a value.
    pub required: crate::spec::mapping::Required,

    /// Values that count as no value.
    pub blank: Vec<Value>,
    /// Message for a missing required value.
    pub message: Option<String>,
    /// Conflict policy.
    pub conflict: ConflictPolicy,
    /// List separator.
    pub separator: String,
}

/// A compiled lookup.
#[derive(Debug, Clone)]
pub struct CompiledLookup {
    /// Connector searched.
    pub connector: ConnectorId,
    /// Entity searched.
    pub entity: String,
    /// Field equalities (templates over `value`, `record`).
    pub match_fields: Vec<(String, CompiledText)>,
    /// Field used as the reference (None: the entity key).
    pub returns: Option<String>,
    /// Field read back towards Partner Center.
    pub reverse: Option<String>,
    /// Fields of a record to create when none matches.
    pub create: Option<Vec<(String, CompiledText)>>,
}

/// A compiled value map: one table per direction, keyed by normalised text.
#[derive(Debug, Clone, Default)]
pub struct CompiledValueMap {
    /// Name.
    pub name: String,
    /// Partner Center value → CRM value.
    pub to_crm: HashMap<String, Value>,
    /// CRM value → Partner Center value.
    pub to_partner_center: HashMap<String, Value>,
    /// Fallback towards the CRM.
    pub default_crm: Option<Value>,
    /// Fallback towards Partner Center.
    pub default_partner_center: Option<Value>,
}

impl CompiledValueMap {
    /// Compiles a value map.
    pub fn compile(spec: &ValueMapSpec) -> CompiledValueMap {
        let mut vm = CompiledValueMap {
            name: spec.value_map.clone(),
            ..Default::default()
        };
        for e in &spec.entries {
            if e.direction.allows(Side::Crm) {
                vm.to_crm
                    .entry(scalar_text(&e.partner_center))
                    .or_insert_with(|| e.crm.clone());
            }
            if e.direction.allows(Side::PartnerCenter) {
                vm.to_partner_center
                    .entry(scalar_text(&e.crm))
                    .or_insert_with(|| e.partner_center.clone());
            }
        }
        if let Some(d) = &spec.default {
            vm.default_crm = d.crm.clone();
            vm.default_partner_center = d.partner_center.clone();
        }
        vm
    }

    /// True when an entry maps "no value" (`null`) towards `target`.
    pub fn maps_null(&self, target: Side) -> bool {
        match target {
            Side::Crm => self.to_crm.contains_key("null"),
            Side::PartnerCenter => self.to_partner_center.contains_key("null"),
        }
    }

    /// The entry for `v` towards `target`, ignoring the default.
    pub fn entry(&self, v: &Value, target: Side) -> Option<&Value> {
        match target {
            Side::Crm => self.to_crm.get(&scalar_text(v)),
            Side::PartnerCenter => self.to_partner_center.get(&scalar_text(v)),
        }
    }

    /// Translates `v` towards `target`; `None` when unmapped and no default.
    pub fn translate(&self, v: &Value, target: Side) -> Option<Value> {
        let (table, default) = match target {
            Side::Crm => (&self.to_crm, &self.default_crm),
            Side::PartnerCenter => (&self.to_partner_center, &self.default_partner_center),
        };
        table
            .get(&scalar_text(v))
            .cloned()
            .or_else(|| default.clone())
    }
}

/// Context for compiling mappings.
pub(super) struct MappingCx<'a> {
    pub env: Env,
    pub connectors: &'a HashMap<String, ConnectorId>,
    pub value_maps: &'a HashMap<String, ValueMapId>,
    pub crm_fields: &'a dyn Fn(ConnectorId, &str, &str) -> Option<FieldType>,
    pub default_conflict: ConflictPolicy,
}

fn connector(cx: &MappingCx<'_>, name: &str) -> Result<ConnectorId, CompileError> {
    cx.connectors
        .get(name)
        .copied()
        .ok_or_else(|| CompileError(format!("unknown connector `{name}`")))
}

/// Compiles a mapping table.
pub(super) fn compile_mapping(
    cx: &MappingCx<'_>,
    spec: &MappingSpec,
) -> Result<CompiledMapping, CompileError> {
    let pc = SideRef {
        connector: connector(cx, &spec.partner_center.connector)?,
        entity: spec.partner_center.entity.clone(),
    };
    let crm = SideRef {
        connector: connector(cx, &spec.crm.connector)?,
        entity: spec.crm.entity.clone(),
    };
    let conflict = spec.conflict.unwrap_or(cx.default_conflict);
    let mut rows = Vec::with_capacity(spec.fields.len());
    for row in &spec.fields {
        rows.push(compile_row(cx, &crm, row, conflict)?);
    }
    let link_partner_center = match spec.link.as_ref().and_then(|l| l.partner_center.as_deref()) {
        Some(p) => Some(CompiledPath::compile(p).map_err(|e| CompileError(e.0))?),
        None => None,
    };
    Ok(CompiledMapping {
        name: spec.mapping.clone(),
        partner_center: pc,
        crm,
        link_crm: spec.link.as_ref().map(|l| l.crm.clone()),
        link_partner_center,
        conflict,
        rows,
    })
}

fn text(env: Env, t: &Option<String>) -> Result<Option<CompiledText>, CompileError> {
    t.as_deref()
        .map(|t| CompiledText::template(env, t).map_err(|e| CompileError(e.0)))
        .transpose()
}

fn compile_row(
    cx: &MappingCx<'_>,
    crm: &SideRef,
    row: &FieldRow,
    conflict: ConflictPolicy,
) -> Result<CompiledRow, CompileError> {
    let partner_center = row
        .partner_center
        .as_ref()
        .map(|p| {
            p.items()
                .into_iter()
                .map(|s| CompiledPath::compile(s).map_err(|e| CompileError(e.0)))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let crm_fields: Vec<String> = row
        .crm
        .as_ref()
        .map(|c| c.items().into_iter().map(String::from).collect())
        .unwrap_or_default();
    let crm_as_text = crm_fields
        .first()
        .map(|f| {
            !matches!(
                (cx.crm_fields)(crm.connector, &crm.entity, f),
                Some(FieldType::List)
            )
        })
        .unwrap_or(true);
    let value_map = match &row.value_map {
        Some(name) => Some(
            *cx.value_maps
                .get(name)
                .ok_or_else(|| CompileError(format!("unknown value map `{name}`")))?,
        ),
        None => None,
    };
    let lookup = row
        .lookup
        .as_ref()
        .map(|l| compile_lookup(cx, crm, l))
        .transpose()?;
    Ok(CompiledRow {
        label: row.label(),
        ty: row.field_type,
        direction: row.effective_direction(),
        partner_center,
        crm: crm_fields,
        crm_as_text,
        value_map,
        lookup,
        value: text(cx.env, &row.value)?,
        transform: text(cx.env, &row.transform)?,
        reverse: text(cx.env, &row.reverse)?,
        default: row.default.clone(),
        required: row.required,
        blank: row.blank.clone(),
        message: row.message.clone(),

        conflict: row.conflict.unwrap_or(conflict),
        separator: row.separator.clone().unwrap_or_else(|| ",".to_string()),
    })
}

fn compile_lookup(
    cx: &MappingCx<'_>,
    crm: &SideRef,
    l: &LookupSpec,
) -> Result<CompiledLookup, CompileError> {
    let connector = match &l.connector {
        Some(name) => connector(cx, name)?,
        None => crm.connector,
    };
    let fields = |m: &std::collections::BTreeMap<String, String>| -> Result<Vec<(String, CompiledText)>, CompileError> {
        m.iter()
            .map(|(k, v)| Ok((k.clone(), CompiledText::template(cx.env, v).map_err(|e| CompileError(e.0))?)))
            .collect()
    };
    Ok(CompiledLookup {
        connector,
        entity: l.entity.clone(),
        match_fields: fields(&l.match_fields)?,
        returns: l.returns.clone(),
        reverse: l.reverse.clone(),
        create: l.create.as_ref().map(fields).transpose()?,
    })
}
