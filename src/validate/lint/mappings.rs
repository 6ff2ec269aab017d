//! Mapping-table and value-map rules: JSONPaths parse and name real referral
//! fields, CRM fields exist with a compatible type, rows have a source for each
//! direction they sync, two-way rows can be reversed, templates read only `value`
//! and `record`, value maps are unambiguous and cover the enumeration they map.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::domain::{FieldStep, check_referral_path};
use crate::expr::{CompiledPath, PathShape};
use crate::spec::common::{Direction, Side};
use crate::spec::connector::{ConnectorKind, EntitySpec};
use crate::spec::mapping::{FieldRow, FieldType, KnownEnum, MappingSpec, OneOrMany, ValueMapSpec};

use super::{Cx, TextMode, undeclared};

const ROW_VARS: &[&str] = &["value", "record"];

pub(super) fn check(cx: &mut Cx<'_>) {
    let project = cx.project;
    for m in project.mappings.values() {
        check_mapping(cx, m.file, &m.spec);
    }
    for vm in project.value_maps.values() {
        check_value_map(cx, vm.file, &vm.spec);
    }
}

fn check_mapping(cx: &mut Cx<'_>, file: usize, m: &MappingSpec) {
    let pc = cx.connector_entity(
        file,
        "/partner_center",
        &m.partner_center.connector,
        &m.partner_center.entity,
    );
    let crm = cx.connector_entity(file, "/crm", &m.crm.connector, &m.crm.entity);
    let pc_is_referral = pc.is_some_and(|(c, _)| c.kind == ConnectorKind::PartnerCenter)
        && m.partner_center.entity == "referral";
    let crm_entity = crm.and_then(|(_, e)| e);
    if let Some(link) = &m.link {
        cx.field(
            file,
            "/link/crm",
            crm_entity,
            &m.crm.entity,
            &link.crm,
            true,
        );
        if let Some(p) = &link.partner_center {
            check_pc_path(cx, file, "/link/partner_center", p, pc_is_referral);
        }
    }
    for (i, row) in m.fields.iter().enumerate() {
        check_row(
            cx,
            file,
            &format!("/fields/{i}"),
            m,
            row,
            pc_is_referral,
            crm_entity,
        );
    }
}

fn check_pc_path(
    cx: &mut Cx<'_>,
    file: usize,
    pointer: &str,
    path: &str,
    is_referral: bool,
) -> Option<CompiledPath> {
    match CompiledPath::compile(path) {
        Err(e) => {
            report_path_error(cx, file, pointer, path, &e);
            None
        }
        Ok(compiled) => {
            if is_referral
                && let Some(steps) = compiled.steps()
                && let Err((index, known)) = check_referral_path(steps)
            {
                let bad = match &steps[index] {
                    FieldStep::Name(n) => n.clone(),
                    FieldStep::Element => "[*]".to_string(),
                };
                let d = Diagnostic::error(
                    Code::UnknownField,
                    format!("the Partner Center referral has no field `{bad}` in `{path}`"),
                );
                let d = match did_you_mean(&bad, known.iter().map(String::as_str)) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(
                        "see the Referral schema in specs/partner-center-referrals.swagger.json",
                    ),
                };
                let range = path.find(bad.as_str()).map(|s| s..s + bad.len());
                cx.report_in_text(file, pointer, path, range, d);
            }
            Some(compiled)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_row(
    cx: &mut Cx<'_>,
    file: usize,
    p: &str,
    m: &MappingSpec,
    row: &FieldRow,
    pc_is_referral: bool,
    crm_entity: Option<&EntitySpec>,
) {
    let direction = row.effective_direction();
    if row.read_only.is_some()
        && row.direction != Direction::Both
        && row.direction != row.effective_direction()
    {
        let d = Diagnostic::error(
            Code::InvalidRow,
            format!(
                "`read_only` contradicts `direction: {}`",
                row.direction.as_str()
            ),
        )
        .with_help({
            let side = row.read_only.map_or("crm", Side::as_str);
            format!(
                "`read_only: {side}` means the row syncs only to {side}; drop one of the two keys"
            )
        });

        cx.report(file, &format!("{p}/direction"), d);
    }
    // Paths and fields.
    let mut pc_paths = Vec::new();
    if let Some(pcs) = &row.partner_center {
        for (j, path) in pcs.items().into_iter().enumerate() {
            let ptr = if pcs.is_composite() || matches!(pcs, OneOrMany::Many(_)) {
                format!("{p}/partner_center/{j}")
            } else {
                format!("{p}/partner_center")
            };
            pc_paths.push(check_pc_path(cx, file, &ptr, path, pc_is_referral));
        }
    }
    let mut crm_fields = Vec::new();
    if let Some(crms) = &row.crm {
        for (j, field) in crms.items().into_iter().enumerate() {
            let ptr = if matches!(crms, OneOrMany::Many(_)) {
                format!("{p}/crm/{j}")
            } else {
                format!("{p}/crm")
            };
            if cx.field(file, &ptr, crm_entity, &m.crm.entity, field, true)
                && let Some(spec) = crm_entity.and_then(|e| e.fields.get(field))
            {
                crm_fields.push(Some(spec));
                if !types_fit(row.field_type, spec.field_type) && !crms.is_composite() {
                    let d = Diagnostic::error(
                        Code::WrongType,
                        format!(
                            "the row's type `{}` does not fit field `{field}` of type `{}`",
                            row.field_type.as_str(),
                            spec.field_type.as_str()
                        ),
                    )
                    .with_help("change the row's `type:` or map another field");
                    cx.report(file, &ptr, d);
                }
                continue;
            }
            crm_fields.push(None);
        }
    }
    // A source for every direction the row syncs.
    let composite = row
        .partner_center
        .as_ref()
        .is_some_and(OneOrMany::is_composite)
        || row.crm.as_ref().is_some_and(OneOrMany::is_composite);
    if composite && row.value_map.is_none() {
        let d = Diagnostic::error(Code::InvalidRow, "a row with several paths or fields needs a `value_map` to translate the combined values")
            .with_help("add `value_map: <name>` whose entries use lists, e.g. `partner_center: [Closed, Won]`");
        cx.report_key(
            file,
            &format!(
                "{p}/{}",
                if row
                    .partner_center
                    .as_ref()
                    .is_some_and(OneOrMany::is_composite)
                {
                    "partner_center"
                } else {
                    "crm"
                }
            ),
            d,
        );
    }
    let mut sides_missing = false;
    for (target, source_present, target_present) in [
        (
            Side::Crm,
            row.partner_center.is_some() || row.value.is_some(),
            row.crm.is_some(),
        ),
        (
            Side::PartnerCenter,
            row.crm.is_some() || row.value.is_some(),
            row.partner_center.is_some(),
        ),
    ] {
        if !direction.allows(target) {
            continue;
        }
        if !target_present || !source_present {
            let (missing, key) = if !target_present {
                (target.as_str(), target.as_str())
            } else {
                (target.other().as_str(), target.other().as_str())
            };
            let d = if direction == Direction::Both {
                Diagnostic::error(
                    Code::IrreversibleRow,
                    format!(
                        "this two-way row has no `{missing}` side, so it cannot sync towards {}",
                        target.as_str()
                    ),
                )
                .with_help(format!(
                    "add `{key}:` or make the row one-way with `direction: to_{}`",
                    target.other().as_str()
                ))
            } else {
                Diagnostic::error(
                    Code::InvalidRow,
                    format!(
                        "this row syncs to {} but has no `{missing}` side (nor a `value`)",
                        target.as_str()
                    ),
                )
                .with_help(format!("add `{key}:`"))
            };
            cx.report(file, p, d);
            sides_missing = true;
        }
    }
    // Reversibility of two-way rows (a row missing a side was reported above).
    if direction == Direction::Both && !sides_missing {
        let mut why = Vec::new();
        if row.transform.is_some() && row.reverse.is_none() {
            why.push((
                "transform",
                "it has a `transform` but no `reverse`".to_string(),
            ));
        }
        if row.reverse.is_some() && row.transform.is_none() {
            why.push((
                "reverse",
                "it has a `reverse` but no `transform`".to_string(),
            ));
        }
        if row.value.is_some() {
            why.push((
                "value",
                "a computed `value` cannot be synced back".to_string(),
            ));
        }
        if let Some(l) = &row.lookup
            && l.reverse.is_none()
        {
            why.push((
                "lookup",
                "its lookup has no `reverse` field to read the value back".to_string(),
            ));
        }
        for path in pc_paths.iter().flatten() {
            if matches!(path.shape, PathShape::Complex) {
                why.push(("partner_center", format!("the JSONPath `{}` selects by filter, slice or descendant and cannot be written", path.source)));
            }
        }
        for (j, spec) in crm_fields.iter().enumerate() {
            if spec.is_some_and(|s| s.read_only) {
                let name = row
                    .crm
                    .as_ref()
                    .map(|c| c.items()[j].to_string())
                    .unwrap_or_default();
                why.push(("crm", format!("the CRM field `{name}` is read-only")));
            }
        }
        for (key, reason) in why {
            let d = Diagnostic::error(Code::IrreversibleRow, format!("this two-way row cannot be reversed: {reason}"))
                .with_help("make it one-way with `direction: to_crm` (or `to_partner_center`), or add the inverse");
            cx.report_key(file, &format!("{p}/{key}"), d);
        }
    }
    // Templates read only `value` and `record`.
    for (key, text) in [
        ("transform", &row.transform),
        ("reverse", &row.reverse),
        ("value", &row.value),
    ] {
        if let Some(t) = text {
            let candidates: Vec<String> = ROW_VARS.iter().map(|s| (*s).to_string()).collect();
            cx.check_text(
                file,
                &format!("{p}/{key}"),
                t,
                TextMode::Template,
                &mut |v| {
                    (!ROW_VARS.contains(&v)).then(|| {
                        undeclared(
                            v,
                            &candidates,
                            "in a mapping row (rows read `value` and `record`)",
                        )
                    })
                },
            );
        }
    }
    if let Some(vm) = &row.value_map {
        cx.value_map(file, &format!("{p}/value_map"), vm);
    }
    if let Some(lookup) = &row.lookup {
        let connector = lookup.connector.as_deref().unwrap_or(&m.crm.connector);
        let lp = format!("{p}/lookup");
        if let Some(c) = cx.connector(file, &format!("{lp}/connector"), connector) {
            let entity = cx.entity(file, &format!("{lp}/entity"), c, &lookup.entity);
            let mut names: Vec<(&str, &String)> =
                lookup.match_fields.keys().map(|k| ("match", k)).collect();
            if let Some(create) = &lookup.create {
                names.extend(create.keys().map(|k| ("create", k)));
            }
            for (section, k) in names {
                cx.field(
                    file,
                    &format!("{lp}/{section}/{}", crate::source::escape_pointer(k)),
                    entity,
                    &lookup.entity,
                    k,
                    false,
                );
            }
            for (key, f) in [("returns", &lookup.returns), ("reverse", &lookup.reverse)] {
                if let Some(f) = f {
                    cx.field(
                        file,
                        &format!("{lp}/{key}"),
                        entity,
                        &lookup.entity,
                        f,
                        true,
                    );
                }
            }
        }
        let candidates: Vec<String> = ROW_VARS.iter().map(|s| (*s).to_string()).collect();
        let templates = lookup
            .match_fields
            .iter()
            .map(|(k, v)| ("match", k, v))
            .chain(
                lookup
                    .create
                    .iter()
                    .flatten()
                    .map(|(k, v)| ("create", k, v)),
            );
        for (section, k, t) in templates {
            cx.check_text(
                file,
                &format!("{lp}/{section}/{}", crate::source::escape_pointer(k)),
                t,
                TextMode::Template,
                &mut |v| {
                    (!ROW_VARS.contains(&v)).then(|| {
                        undeclared(
                            v,
                            &candidates,
                            "in a lookup (lookups read `value` and `record`)",
                        )
                    })
                },
            );
        }
        if row.field_type != FieldType::Lookup {
            let d = Diagnostic::error(
                Code::InvalidRow,
                format!(
                    "a row with `lookup` has `type: lookup`, not `{}`",
                    row.field_type.as_str()
                ),
            );
            cx.report(file, &format!("{p}/lookup"), d);
        }
    }
}

/// True when a row of type `row` can be stored in a field of type `field`.
pub(super) fn types_fit(row: FieldType, field: FieldType) -> bool {
    use FieldType as T;
    row == field
        || matches!(
            (row, field),
            (T::Money | T::Number, T::Money | T::Number | T::String)
                | (T::Date | T::Datetime, T::Date | T::Datetime | T::String)
                | (
                    T::List | T::MultiOption,
                    T::String | T::List | T::MultiOption
                )
                | (T::Option, T::String | T::Number)
                | (T::String, T::Option | T::Number)
        )
}

pub(super) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(value_text).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

fn check_value_map(cx: &mut Cx<'_>, file: usize, vm: &ValueMapSpec) {
    let project = cx.project;
    // Ambiguity in each direction.
    for (target, source_key) in [(Side::Crm, "partner_center"), (Side::PartnerCenter, "crm")] {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, e) in vm.entries.iter().enumerate() {
            if !e.direction.allows(target) {
                continue;
            }
            let source = if target == Side::Crm {
                &e.partner_center
            } else {
                &e.crm
            };
            let key = value_text(source);
            if let Some(&first) = seen.get(&key) {
                let first_target = if target == Side::Crm {
                    &vm.entries[first].crm
                } else {
                    &vm.entries[first].partner_center
                };
                let this_target = if target == Side::Crm {
                    &e.crm
                } else {
                    &e.partner_center
                };
                if first_target != this_target {
                    let d = Diagnostic::error(
                        Code::ValueMapAmbiguous,
                        format!(
                            "`{key}` maps to both `{}` (entry {}) and `{}` towards {}",
                            value_text(first_target),
                            first + 1,
                            value_text(this_target),
                            target.as_str()
                        ),
                    )
                    .with_help(format!(
                        "make all but one of these entries one-way, e.g. `direction: to_{}`",
                        target.other().as_str()
                    ));
                    cx.report(file, &format!("/entries/{i}/{source_key}"), d);
                }
            } else {
                seen.insert(key, i);
            }
        }
    }
    // Arity of composite entries.
    let arity = |v: &Value| v.as_array().map_or(1, Vec::len);
    if let Some(first) = vm.entries.first() {
        for (i, e) in vm.entries.iter().enumerate().skip(1) {
            for (key, a, b) in [
                ("partner_center", &first.partner_center, &e.partner_center),
                ("crm", &first.crm, &e.crm),
            ] {
                if arity(a) != arity(b) {
                    let d = Diagnostic::error(
                        Code::InvalidValue,
                        format!(
                            "entry has {} value(s) for {key} but the first entry has {}",
                            arity(b),
                            arity(a)
                        ),
                    );
                    cx.report(file, &format!("/entries/{i}/{key}"), d);
                }
            }
        }
    }
    // Coverage of the Partner Center enumeration.
    let users: Vec<(&MappingSpec, &FieldRow)> = project
        .mappings
        .values()
        .flat_map(|m| m.spec.fields.iter().map(move |r| (&m.spec, r)))
        .filter(|(_, r)| r.value_map.as_deref() == Some(vm.value_map.as_str()))
        .collect();
    let inferred = users.iter().find_map(|(_, r)| {
        r.partner_center
            .as_ref()
            .and_then(|p| KnownEnum::for_paths(&p.items()))
    });
    if let Some(known) = vm.covers.or(inferred) {
        let values = known.values();
        let pointer = if vm.covers.is_some() {
            "/enum"
        } else {
            "/value_map"
        };
        for (i, e) in vm.entries.iter().enumerate() {
            if !values.contains(&e.partner_center) {
                let d = Diagnostic::error(
                    Code::InvalidValue,
                    format!(
                        "`{}` is not a value of `{}`",
                        value_text(&e.partner_center),
                        known.as_str()
                    ),
                );
                let names: Vec<String> = values.iter().map(value_text).collect();
                let d = match did_you_mean(
                    &value_text(&e.partner_center),
                    names.iter().map(String::as_str),
                ) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("values: {}", names.join(", "))),
                };
                cx.report(file, &format!("/entries/{i}/partner_center"), d);
            }
        }
        let has_default = vm.default.as_ref().is_some_and(|d| d.crm.is_some());
        if !has_default {
            let missing: Vec<String> = values
                .iter()
                .filter(|v| {
                    !vm.entries
                        .iter()
                        .any(|e| e.direction.allows(Side::Crm) && &e.partner_center == *v)
                })
                .map(value_text)
                .collect();
            if !missing.is_empty() {
                let d = Diagnostic::error(
                    Code::ValueMapIncomplete,
                    format!("value map `{}` does not cover {} of `{}`: {}", vm.value_map, if missing.len() == 1 { "this value" } else { "these values" }, known.as_str(), missing.join(", ")),
                )
                .with_help("add an entry for each (one-way `direction: to_crm` entries are fine), or a `default: { crm: ... }`");
                cx.report_key(file, pointer, d);
            }
        }
    }
    // Coverage of the CRM picklist, when a two-way row maps it and its values are known.
    let has_pc_default = vm
        .default
        .as_ref()
        .is_some_and(|d| d.partner_center.is_some());
    if has_pc_default {
        return;
    }
    let mut crm_values: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (m, row) in &users {
        if !row.effective_direction().allows(Side::PartnerCenter) {
            continue;
        }
        let Some(OneOrMany::One(field)) = &row.crm else {
            continue;
        };
        let Some(conn) = project.connectors.get(&m.crm.connector) else {
            continue;
        };
        let Some(spec) = conn
            .spec
            .entities
            .get(&m.crm.entity)
            .and_then(|e| e.fields.get(field))
        else {
            continue;
        };
        if !spec.values.is_empty() {
            crm_values.insert(format!("{}.{field}", m.crm.entity), spec.values.clone());
        }
    }
    for (field, values) in crm_values {
        let missing: Vec<String> = values
            .iter()
            .filter(|v| {
                !vm.entries
                    .iter()
                    .any(|e| e.direction.allows(Side::PartnerCenter) && same_scalar(&e.crm, v))
            })
            .map(value_text)
            .collect();
        if !missing.is_empty() {
            let d = Diagnostic::error(
                Code::ValueMapIncomplete,
                format!("value map `{}` does not map these values of `{field}` back to Partner Center: {}", vm.value_map, missing.join(", ")),
            )
            .with_help("add entries (one-way `direction: to_partner_center` is fine) or a `default: { partner_center: ... }`");
            cx.report_key(file, "/value_map", d);
        }
    }
}

/// Equality that lets `100000000` match `"100000000"` (picklist codes are written
/// both ways).
pub(super) fn same_scalar(a: &Value, b: &Value) -> bool {
    a == b || value_text(a) == value_text(b)
}

/// Reports a JSONPath syntax error at the character where parsing stopped.
pub(super) fn report_path_error(
    cx: &mut Cx<'_>,
    file: usize,
    pointer: &str,
    path: &str,
    e: &crate::expr::path::PathError,
) {
    let d = Diagnostic::error(Code::InvalidJsonpath, format!("invalid JSONPath `{path}`: {}", e.message()))
        .with_help("JSONPath (RFC 9535) looks like `$.details.dealValue`, `$.team[0].email` or `$.details.requirements.solutions[*].id`");
    let range = e.column().map(|c| {
        let start = path
            .char_indices()
            .nth(c.saturating_sub(1))
            .map_or(path.len(), |(i, _)| i);
        let end = path[start..]
            .chars()
            .next()
            .map_or(start, |ch| start + ch.len_utf8());
        start..end
    });
    cx.report_in_text(file, pointer, path, range, d);
}
