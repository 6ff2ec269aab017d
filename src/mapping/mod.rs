//! The mapping engine (no I/O): projects a record through a compiled mapping table
//! in either direction, diffs a projection against the other side's record, and
//! merges three ways against the last synced values. Lookups (currency code →
//! `transactioncurrencyid`, customer → account) go through an injected
//! [`Lookups`] resolver, which the interpreter fills before projecting.

pub mod coerce;
mod merge;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

pub use merge::{Base, Conflict, Merge, RowValues, merge, merge_toward, snapshot};

use crate::compile::mapping::{CompiledLookup, CompiledMapping, CompiledRow, CompiledValueMap};
use crate::expr::path::set_pointer;
use crate::expr::value::{Scope, from_json, from_shared_json};
use crate::spec::common::Side;
use crate::spec::mapping::FieldType;
use coerce::{coerce, is_empty, same};

/// Why a row could not be projected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{row}: {message}")]
pub struct MapError {
    /// The row's label.
    pub row: String,
    /// What went wrong.
    pub message: String,
    /// The kind of failure.
    pub kind: MapErrorKind,
}

/// Kinds of projection failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapErrorKind {
    /// A required value is missing.
    Required,
    /// A value has no entry in the value map and there is no default.
    Unmapped,
    /// A value does not fit the row's type.
    Type,
    /// A transform template failed.
    Template,
    /// A lookup found nothing (or failed).
    Lookup,
}

fn fail(row: &CompiledRow, kind: MapErrorKind, message: String) -> MapError {
    MapError {
        row: row.label.clone(),
        message,
        kind,
    }
}

/// Resolves lookups during a projection.
pub trait Lookups {
    /// The reference for a record matching `fields` (rendered match values).
    fn resolve(
        &self,
        lookup: &CompiledLookup,
        fields: &[(String, Value)],
    ) -> Result<Option<Value>, String>;
    /// The value of `lookup.reverse` on the record `id` refers to.
    fn reverse(&self, lookup: &CompiledLookup, id: &Value) -> Result<Option<Value>, String>;
    /// True when no record matches yet and creating one was left to a writing
    /// step: the row is left out of this projection (a `diff` never creates).
    fn deferred(&self, _lookup: &CompiledLookup, _fields: &[(String, Value)]) -> bool {
        false
    }
}

/// A resolver for projections that have no lookups (or must not run them).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLookups;

impl Lookups for NoLookups {
    fn resolve(
        &self,
        lookup: &CompiledLookup,
        _: &[(String, Value)],
    ) -> Result<Option<Value>, String> {
        Err(format!(
            "lookups of `{}` are not available here",
            lookup.entity
        ))
    }
    fn reverse(&self, lookup: &CompiledLookup, _: &Value) -> Result<Option<Value>, String> {
        Err(format!(
            "lookups of `{}` are not available here",
            lookup.entity
        ))
    }
}

/// A lookup the interpreter must perform before projecting.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupRequest {
    /// Find (or create) the record matching these field values.
    Match {
        /// The lookup (cloned out of the mapping).
        lookup: CompiledLookup,
        /// Rendered match values.
        fields: Vec<(String, Value)>,
        /// Rendered values for creating the record when none matches.
        create: Option<Vec<(String, Value)>>,
    },
    /// Read `lookup.reverse` from the record `id`.
    Reverse {
        /// The lookup.
        lookup: CompiledLookup,
        /// The referenced record's id.
        id: Value,
    },
}

impl PartialEq for CompiledLookup {
    fn eq(&self, other: &Self) -> bool {
        self.connector == other.connector
            && self.entity == other.entity
            && self.returns == other.returns
            && self.reverse == other.reverse
    }
}

/// The key under which a resolved lookup is stored.
pub fn lookup_key(lookup: &CompiledLookup, fields: &[(String, Value)]) -> String {
    let mut key = format!("{}:{}", lookup.connector.0, lookup.entity);
    for (k, v) in fields {
        key.push_str(&format!("|{k}={}", coerce::scalar_text(v)));
    }
    key
}

/// Lookups resolved ahead of a projection.
#[derive(Debug, Default, Clone)]
pub struct ResolvedLookups {
    /// `lookup_key` → reference.
    pub matches: HashMap<String, Option<Value>>,
    /// `entity:id` → reverse value.
    pub reverses: HashMap<String, Option<Value>>,
    /// `lookup_key`s with no match whose creation is left to a writing step.
    pub deferred: std::collections::HashSet<String>,
}

impl ResolvedLookups {
    /// The key of a reverse lookup.
    pub fn reverse_key(lookup: &CompiledLookup, id: &Value) -> String {
        format!(
            "{}:{}#{}",
            lookup.connector.0,
            lookup.entity,
            coerce::scalar_text(id).to_ascii_lowercase()
        )
    }
}

impl Lookups for ResolvedLookups {
    fn resolve(
        &self,
        lookup: &CompiledLookup,
        fields: &[(String, Value)],
    ) -> Result<Option<Value>, String> {
        self.matches
            .get(&lookup_key(lookup, fields))
            .cloned()
            .ok_or_else(|| format!("lookup of `{}` was not resolved", lookup.entity))
    }
    fn reverse(&self, lookup: &CompiledLookup, id: &Value) -> Result<Option<Value>, String> {
        self.reverses
            .get(&Self::reverse_key(lookup, id))
            .cloned()
            .ok_or_else(|| format!("lookup of `{}` was not resolved", lookup.entity))
    }
    fn deferred(&self, lookup: &CompiledLookup, fields: &[(String, Value)]) -> bool {
        self.deferred.contains(&lookup_key(lookup, fields))
    }
}

/// One value to write to the target record.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// Row index in the mapping.
    pub row: usize,
    /// Part of a composite row.
    pub part: usize,
    /// CRM field name, or Partner Center JSON pointer.
    pub key: String,
    /// The value in the target's representation.
    pub value: Value,
    /// The row-level value (what reading the target back gives).
    pub compare: Value,
    /// For value-mapped rows: the source value before translation. A target value
    /// that translates back to it is not a change (many-to-one maps).
    pub source: Option<Value>,
}

/// The result of projecting a record onto one side.
#[derive(Debug, Clone, PartialEq)]
pub struct Projected {
    /// The side projected onto.
    pub target: Side,
    /// The writes, in row order.
    pub writes: Vec<Write>,
}

impl Projected {
    /// The projection as a record: flat fields for the CRM, nested for Partner Center.
    pub fn to_record(&self) -> Value {
        let mut out = Value::Object(serde_json::Map::new());
        for w in &self.writes {
            match self.target {
                Side::Crm => {
                    if let Value::Object(m) = &mut out {
                        m.insert(w.key.clone(), w.value.clone());
                    }
                }
                Side::PartnerCenter => set_pointer(&mut out, &w.key, w.value.clone()),
            }
        }
        out
    }
}

/// A field that differs between a projection and the target's current record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    /// The row's label.
    pub label: String,
    /// CRM field or Partner Center pointer.
    pub key: String,
    /// Current value in the target.
    pub old: Value,
    /// Value to write.
    pub new: Value,
}

/// Changes as the `{key: new value}` object `update` steps write.
pub fn changes_object(changes: &[Change]) -> Value {
    Value::Object(
        changes
            .iter()
            .map(|c| (c.key.clone(), c.new.clone()))
            .collect(),
    )
}

/// Reads a row's raw value from a record of `side` (composite rows give a list).
pub fn read_row(row: &CompiledRow, side: Side, record: &Value) -> Value {
    let parts: Vec<Value> = match side {
        Side::PartnerCenter => row.partner_center.iter().map(|p| p.read(record)).collect(),
        Side::Crm => row
            .crm
            .iter()
            .map(|f| record.get(f).cloned().unwrap_or(Value::Null))
            .collect(),
    };
    match parts.len() {
        0 => Value::Null,
        1 => parts.into_iter().next().unwrap_or(Value::Null),
        _ => Value::Array(parts),
    }
}

/// Reads the current value of one write's location in a target record.
fn read_write(row: &CompiledRow, w: &Write, target: Side, record: &Value) -> Value {
    match target {
        Side::Crm => record.get(&w.key).cloned().unwrap_or(Value::Null),
        Side::PartnerCenter => row
            .partner_center
            .get(w.part)
            .map_or(Value::Null, |p| p.read(record)),
    }
}

/// A projector over one mapping table.
pub struct Projector<'a> {
    /// The table.
    pub mapping: &'a CompiledMapping,
    /// All value maps of the project (indexed by id).
    pub value_maps: &'a [CompiledValueMap],
}

struct TemplateScope<'r> {
    record: &'r Value,
    /// The record, when the caller shares it: templates then read it in place.
    shared: Option<&'r Arc<Value>>,
    converted: Option<minijinja::Value>,
}

impl<'r> TemplateScope<'r> {
    /// Evaluates a row template with `value` and `record`: straight on JSON when
    /// the template is simple, else through minijinja.
    fn eval(
        &mut self,
        t: &crate::expr::value::CompiledText,
        value: &Value,
    ) -> Result<Value, crate::expr::value::EvalError> {
        if let Some(v) = t.eval_json(&[("value", value), ("record", self.record)]) {
            return Ok(v);
        }
        t.eval(&self.with_value(value))
    }

    fn new(record: &'r Value, shared: Option<&'r Arc<Value>>) -> TemplateScope<'r> {
        TemplateScope {
            record,
            shared,
            converted: None,
        }
    }

    fn with_value(&mut self, value: &Value) -> minijinja::Value {
        let record = self
            .converted
            .get_or_insert_with(|| match self.shared {
                Some(shared) => from_shared_json(shared),
                None => from_json(self.record),
            })
            .clone();
        let mut scope = Scope::new();
        scope.set("record", record);
        scope.set_json("value", value);
        scope.to_value()
    }
}

impl<'a> Projector<'a> {
    /// Lookups needed to project `source` onto `target`.
    pub fn lookup_requests(&self, target: Side, source: &Value) -> Vec<LookupRequest> {
        self.lookup_requests_in(target, source, TemplateScope::new(source, None))
    }

    /// [`Self::lookup_requests`] of a shared record, which templates read in place.
    pub fn lookup_requests_shared(&self, target: Side, source: &Arc<Value>) -> Vec<LookupRequest> {
        self.lookup_requests_in(target, source, TemplateScope::new(source, Some(source)))
    }

    fn lookup_requests_in(
        &self,
        target: Side,
        source: &Value,
        mut scope: TemplateScope<'_>,
    ) -> Vec<LookupRequest> {
        let mut out = Vec::new();
        for row in &self.mapping.rows {
            let Some(lookup) = &row.lookup else { continue };
            if !row.direction.allows(target) {
                continue;
            }
            let value = read_row(row, target.other(), source);
            if is_empty(&value) {
                continue;
            }
            match target {
                Side::Crm => {
                    let mut render = |fields: &[(String, crate::expr::value::CompiledText)]| -> Option<Vec<(String, Value)>> {
                        fields.iter().map(|(k, t)| scope.eval(t, &value).ok().map(|v| (k.clone(), v))).collect()
                    };
                    let Some(fields) = render(&lookup.match_fields) else {
                        continue;
                    };
                    let create = lookup.create.as_ref().and_then(|c| render(c));
                    out.push(LookupRequest::Match {
                        lookup: lookup.clone(),
                        fields,
                        create,
                    });
                }
                Side::PartnerCenter => {
                    if lookup.reverse.is_some() {
                        out.push(LookupRequest::Reverse {
                            lookup: lookup.clone(),
                            id: value,
                        });
                    }
                }
            }
        }
        out
    }

    /// Projects `source` (a record of the other side) onto `target`.
    pub fn project(
        &self,
        target: Side,
        source: &Value,
        lookups: &dyn Lookups,
    ) -> Result<Projected, MapError> {
        self.project_in(target, source, lookups, TemplateScope::new(source, None))
    }

    /// [`Self::project`] of a shared record, which templates read in place.
    pub fn project_shared(
        &self,
        target: Side,
        source: &Arc<Value>,
        lookups: &dyn Lookups,
    ) -> Result<Projected, MapError> {
        self.project_in(
            target,
            source,
            lookups,
            TemplateScope::new(source, Some(source)),
        )
    }

    fn project_in(
        &self,
        target: Side,
        source: &Value,
        lookups: &dyn Lookups,
        mut scope: TemplateScope<'_>,
    ) -> Result<Projected, MapError> {
        let mut writes = Vec::new();
        for (index, row) in self.mapping.rows.iter().enumerate() {
            self.project_row(index, row, target, source, lookups, &mut scope, &mut writes)?;
        }
        Ok(Projected { target, writes })
    }

    /// Projects one row (used by three-way merges).
    pub fn project_one(
        &self,
        index: usize,
        target: Side,
        source: &Value,
        lookups: &dyn Lookups,
    ) -> Result<Vec<Write>, MapError> {
        let mut writes = Vec::new();
        if let Some(row) = self.mapping.rows.get(index) {
            let mut scope = TemplateScope::new(source, None);
            self.project_row(index, row, target, source, lookups, &mut scope, &mut writes)?;
        }
        Ok(writes)
    }

    #[allow(clippy::too_many_arguments)]
    fn project_row(
        &self,
        index: usize,
        row: &CompiledRow,
        target: Side,
        source: &Value,
        lookups: &dyn Lookups,
        scope: &mut TemplateScope<'_>,
        writes: &mut Vec<Write>,
    ) -> Result<(), MapError> {
        let target_parts = match target {
            Side::Crm => row.crm.len(),
            Side::PartnerCenter => row.partner_center.len(),
        };
        if !row.direction.allows(target) || target_parts == 0 {
            return Ok(());
        }
        // 1. The source value.
        let mut value = match &row.value {
            Some(computed) => scope.eval(computed, &Value::Null).map_err(|e| {
                fail(
                    row,
                    MapErrorKind::Template,
                    format!("the computed value failed: {e}"),
                )
            })?,
            None => read_row(row, target.other(), source),
        };
        if target == Side::PartnerCenter
            && !is_empty(&value)
            && let Some(lookup) = row.lookup.as_ref().filter(|l| l.reverse.is_some())
        {
            value = lookups
                .reverse(lookup, &value)
                .map_err(|e| fail(row, MapErrorKind::Lookup, e))?
                .unwrap_or(Value::Null);
        }
        // Lists are normalised first so that `"SOL-1, "` or `[""]` count by their
        // real items (and an empty list is "no value").
        // (Not when a template follows: it gets the value as the record has it.)
        let has_template = match target {
            Side::Crm => row.transform.is_some(),
            Side::PartnerCenter => row.reverse.is_some(),
        };
        if matches!(row.ty, FieldType::List | FieldType::MultiOption)
            && !value.is_null()
            && !has_template
            && row.partner_center.len() <= 1
        {
            let list = coerce::items(&value, &row.separator);
            value = if list.is_empty() {
                Value::Null
            } else {
                Value::Array(list)
            };
        }
        // Values the row declares blank (e.g. a deal value of 0) are no value.
        if row
            .blank
            .iter()
            .any(|b| coerce::same(row.ty, b, &value, &row.separator) && !value.is_null())
        {
            value = Value::Null;
        }
        // 2. Missing values (unless the value map has an entry for "no value").

        let maps_null = row
            .value_map
            .and_then(|id| self.value_maps.get(id.0))
            .is_some_and(|vm| vm.maps_null(target));
        if !maps_null
            && (is_empty(&value) || matches!(&value, Value::Array(a) if a.iter().all(is_empty)))
        {
            if let Some(d) = &row.default {
                value = d.clone();
            } else if row.required.towards(target) {
                let message = row
                    .message
                    .clone()
                    .unwrap_or_else(|| "a value is required but the source has none".to_string());
                return Err(fail(row, MapErrorKind::Required, message));
            } else if target == Side::Crm && row.lookup.is_some() {
                // No source value: leave the reference as it is.
                return Ok(());
            } else {
                value = Value::Null;
            }
        }
        // 3. Templates.

        let template = match target {
            Side::Crm => &row.transform,
            Side::PartnerCenter => &row.reverse,
        };
        if let (Some(t), false) = (template, value.is_null()) {
            value = scope.eval(t, &value).map_err(|e| {
                fail(
                    row,
                    MapErrorKind::Template,
                    format!(
                        "the {} template failed: {e}",
                        if target == Side::Crm {
                            "transform"
                        } else {
                            "reverse"
                        }
                    ),
                )
            })?;
        }
        // 4. Value map.
        let mut source_value = None;
        if let Some(vm) = row.value_map.and_then(|id| self.value_maps.get(id.0))
            && (!value.is_null() || vm.maps_null(target))
        {
            source_value = Some(value.clone());
            value = vm.translate(&value, target).ok_or_else(|| {
                fail(
                    row,
                    MapErrorKind::Unmapped,
                    format!(
                        "`{}` has no entry in value map `{}` towards {}",
                        coerce::scalar_text(&value),
                        vm.name,
                        target.as_str()
                    ),
                )
            })?;
        }
        // 5. Lookup towards the CRM.
        if let (Side::Crm, Some(lookup), false) = (target, &row.lookup, value.is_null()) {
            let fields: Vec<(String, Value)> = lookup
                .match_fields
                .iter()
                .map(|(k, t)| scope.eval(t, &value).map(|v| (k.clone(), v)))
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    fail(
                        row,
                        MapErrorKind::Template,
                        format!("the lookup template failed: {e}"),
                    )
                })?;
            if lookups.deferred(lookup, &fields) {
                return Ok(());
            }
            value = match lookups
                .resolve(lookup, &fields)
                .map_err(|e| fail(row, MapErrorKind::Lookup, e))?
            {
                Some(id) => id,
                None => {
                    let wanted: Vec<String> = fields
                        .iter()
                        .map(|(k, v)| format!("{k} = {}", coerce::scalar_text(v)))
                        .collect();
                    return Err(fail(
                        row,
                        MapErrorKind::Lookup,
                        format!("no `{}` matches {}", lookup.entity, wanted.join(", ")),
                    ));
                }
            };
        }
        // 6. Split composites, coerce, emit.
        let parts: Vec<Value> = if target_parts > 1 {
            match value {
                Value::Array(items) if items.len() == target_parts => items,
                Value::Null => vec![Value::Null; target_parts],
                other => {
                    return Err(fail(
                        row,
                        MapErrorKind::Type,
                        format!(
                            "expected {target_parts} values for a composite row, found {}",
                            coerce::scalar_text(&other)
                        ),
                    ));
                }
            }
        } else {
            vec![value]
        };
        for (part, v) in parts.into_iter().enumerate() {
            let as_text = target == Side::Crm && row.crm_as_text;
            let coerced = coerce(row.ty, &v, target, as_text, &row.separator).map_err(|e| {
                fail(
                    row,
                    MapErrorKind::Type,
                    format!("`{}` is not a valid {}", e.found, e.expected.as_str()),
                )
            })?;
            let (key, value) = match target {
                Side::Crm => (row.crm[part].clone(), coerced.clone()),
                Side::PartnerCenter => {
                    let path = &row.partner_center[part];
                    let Some(pointer) = path.write_pointer() else {
                        return Err(fail(
                            row,
                            MapErrorKind::Type,
                            format!("the JSONPath `{}` cannot be written", path.source),
                        ));
                    };
                    (pointer.to_string(), path.write_value(&coerced))
                }
            };
            writes.push(Write {
                row: index,
                part,
                key,
                value,
                compare: coerced,
                source: source_value.clone(),
            });
        }
        Ok(())
    }

    /// The fields of `projected` that differ from `current` (the target's record).
    pub fn diff(&self, projected: &Projected, current: &Value) -> Vec<Change> {
        projected
            .writes
            .iter()
            .filter_map(|w| {
                let row = self.mapping.rows.get(w.row)?;
                let old = read_write(row, w, projected.target, current);
                if same(row.ty, &old, &w.compare, &row.separator)
                    || self.maps_back(row, w, projected.target, current)
                {
                    return None;
                }
                Some(Change {
                    label: row.label.clone(),
                    key: w.key.clone(),
                    old,
                    new: w.value.clone(),
                })
            })
            .collect()
    }

    /// True when the target's current value of a value-mapped row translates back
    /// to the same source value: `Proposal/Price Quote` is already "Active/Accepted"
    /// even though the map would write `Qualification`.
    fn maps_back(&self, row: &CompiledRow, w: &Write, target: Side, current: &Value) -> bool {
        let (Some(source), Some(vm)) = (
            &w.source,
            row.value_map.and_then(|id| self.value_maps.get(id.0)),
        ) else {
            return false;
        };
        let now = read_row(row, target, current);
        vm.entry(&now, target.other())
            .is_some_and(|back| coerce::scalar_text(back) == coerce::scalar_text(source))
    }
}

#[cfg(test)]
mod tests;
