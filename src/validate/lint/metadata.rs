//! Rules against an org's entity metadata, when a snapshot exists
//! (`metadata/<connector>.json`, from `cosync metadata pull`): mapped CRM fields
//! exist there with a compatible type, and value maps map every picklist value
//! back to Partner Center.

use serde_json::Value;

use super::Cx;
use super::mappings::{same_scalar, types_fit, value_text};
use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::spec::common::Side;
use crate::spec::mapping::{FieldType, OneOrMany};

pub(super) fn check(cx: &mut Cx<'_>) {
    let project = cx.project;
    for m in project.mappings.values() {
        let Some(snapshot) = project.metadata.get(&m.spec.crm.connector) else {
            continue;
        };
        let Some(fields) = snapshot
            .entities
            .get(&m.spec.crm.entity)
            .and_then(|e| e.get("fields"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for (i, row) in m.spec.fields.iter().enumerate() {
            let Some(crm) = &row.crm else { continue };
            for (j, field) in crm.items().into_iter().enumerate() {
                let pointer = match crm {
                    OneOrMany::Many(_) => format!("/fields/{i}/crm/{j}"),
                    OneOrMany::One(_) => format!("/fields/{i}/crm"),
                };
                let Some(meta) = fields.get(field) else {
                    let d = Diagnostic::error(
                        Code::UnknownField,
                        format!(
                            "`{field}` is not a field of `{}` in the org's metadata ({})",
                            m.spec.crm.entity, snapshot.name
                        ),
                    );
                    let d = match did_you_mean(field, fields.keys().map(String::as_str)) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help("pull fresh metadata with `cosync metadata pull` if the field was added since"),
                    };
                    cx.report(m.file, &pointer, d);
                    continue;
                };
                let org_type: Option<FieldType> = meta
                    .get("type")
                    .and_then(|t| serde_json::from_value(t.clone()).ok());
                if let Some(t) =
                    org_type.filter(|t| !crm.is_composite() && !types_fit(row.field_type, *t))
                {
                    let d = Diagnostic::error(
                        Code::WrongType,
                        format!(
                            "the row's type `{}` does not fit `{field}`, a `{}` field in the org's metadata",
                            row.field_type.as_str(),
                            t.as_str()
                        ),
                    );
                    cx.report(m.file, &pointer, d);
                }
                check_picklist(cx, m.file, i, row, field, meta);
            }
        }
    }
}

/// A two-way row with a value map must map every picklist value of the org back.
fn check_picklist(
    cx: &mut Cx<'_>,
    file: usize,
    index: usize,
    row: &crate::spec::mapping::FieldRow,
    field: &str,
    meta: &Value,
) {
    let (Some(name), Some(values)) = (&row.value_map, meta.get("values").and_then(Value::as_array))
    else {
        return;
    };
    if row.crm.as_ref().is_some_and(OneOrMany::is_composite)
        || !row.effective_direction().allows(Side::PartnerCenter)
    {
        return;
    }
    let Some(vm) = cx.project.value_maps.get(name) else {
        return;
    };
    if vm
        .spec
        .default
        .as_ref()
        .is_some_and(|d| d.partner_center.is_some())
    {
        return;
    }
    let missing: Vec<String> = values
        .iter()
        .filter(|v| {
            !vm.spec
                .entries
                .iter()
                .any(|e| e.direction.allows(Side::PartnerCenter) && same_scalar(&e.crm, v))
        })
        .map(value_text)
        .collect();
    if !missing.is_empty() {
        let d = Diagnostic::error(
            Code::ValueMapIncomplete,
            format!("value map `{name}` does not map these values of `{field}` in the org's metadata back to Partner Center: {}", missing.join(", ")),
        )
        .with_help("add entries (one-way `direction: to_partner_center` is fine) or a `default: { partner_center: ... }`");
        cx.report(file, &format!("/fields/{index}/value_map"), d);
    }
}
