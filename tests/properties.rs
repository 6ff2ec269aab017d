//! Property: for every two-way row of the shipped mapping tables, projecting a
//! referral onto the CRM and back yields the original value.

use cosync::compile::mapping::CompiledLookup;
use cosync::compile::{CompiledMapping, CompiledProject, CompiledRow, CompiledValueMap, compile};
use cosync::expr::path::set_pointer;
use cosync::mapping::coerce::{same, scalar_text};
use cosync::mapping::{Lookups, read_row};
use cosync::source::Loader;
use cosync::spec::common::{Direction, Side};
use cosync::spec::mapping::FieldType;
use proptest::prelude::*;
use serde_json::{Value, json};

static SHIPPED: std::sync::LazyLock<CompiledProject> = std::sync::LazyLock::new(|| {
    let outcome = Loader::new().load(&["mappings".into()]).unwrap_or_default();
    let (valid, diags) = cosync::validate::validate(outcome);
    assert!(!diags.has_errors(), "{diags:?}");
    compile(&valid).unwrap_or_else(|e| panic!("{e}"))
});

/// A realistic referral that every required row can read; tested rows overwrite
/// their own fields.
fn base_referral() -> Value {
    json!({
        "id": "0f3c1a9e-5b7d-4e2a-9c41-6d2b8e7f1a03",
        "eTag": "\"00006d10-0000-0000-0000-5c70aa630000\"",
        "name": "Contoso cloud migration",
        "status": "Active",
        "substatus": "Accepted",
        "type": "Shared",
        "customerProfile": {
            "name": "Contoso Ltd",
            "address": {"addressLine1": "1 Main St", "city": "Redmond", "state": "WA", "postalCode": "98052", "country": "US"},
            "team": [{"firstName": "Ana", "lastName": "Silva", "email": "ana@contoso.com", "phoneNumber": "1"}]
        },
        "details": {"dealValue": 1000, "currency": "USD", "closingDateTime": "2026-12-31T00:00:00Z", "notes": "n",
                    "requirements": {"solutions": [{"id": "SOL-12345-ABC"}]}},
        "inviteContext": {"assistanceRequestCode": "GeneralOrOther"}
    })
}

/// Lookups that map a value `v` to the reference `id:v` and back.
struct EchoLookups;

impl Lookups for EchoLookups {
    fn resolve(
        &self,
        _: &CompiledLookup,
        fields: &[(String, Value)],
    ) -> Result<Option<Value>, String> {
        Ok(fields
            .first()
            .map(|(_, v)| Value::String(format!("id:{}", scalar_text(v)))))
    }
    fn reverse(&self, _: &CompiledLookup, id: &Value) -> Result<Option<Value>, String> {
        Ok(id
            .as_str()
            .and_then(|s| s.strip_prefix("id:"))
            .map(|s| Value::String(s.to_string())))
    }
}

fn reversible(row: &CompiledRow) -> bool {
    row.direction == Direction::Both
        && row.value.is_none()
        && !row.partner_center.is_empty()
        && !row.crm.is_empty()
        && row.lookup.as_ref().is_none_or(|l| l.reverse.is_some())
}

/// Partner Center values of a value map that survive the round trip.
fn round_trip_values(vm: &CompiledValueMap) -> Vec<Value> {
    let mut out: Vec<Value> = vm
        .to_partner_center
        .values()
        .filter(|pc| {
            vm.translate(pc, Side::Crm)
                .and_then(|crm| vm.translate(&crm, Side::PartnerCenter))
                .is_some_and(|back| scalar_text(&back) == scalar_text(pc))
        })
        .cloned()
        .collect();
    out.sort_by_key(scalar_text);
    out
}

fn value_for(row: &CompiledRow, value_maps: &[CompiledValueMap], seed: u64) -> Option<Value> {
    if let Some(vm) = row.value_map.and_then(|id| value_maps.get(id.0)) {
        let candidates = round_trip_values(vm);
        return (!candidates.is_empty())
            .then(|| candidates[(seed as usize) % candidates.len()].clone());
    }
    if row.lookup.is_some() {
        return Some(json!(
            ["USD", "EUR", "BRL", "JPY", "GBP"][(seed % 5) as usize]
        ));
    }
    Some(match row.ty {
        FieldType::String | FieldType::Option => json!(format!("Deal {seed} — São Paulo ✓")),
        FieldType::Money => json!((seed % 100_000_000) as f64 / 100.0),
        FieldType::Number => json!(seed % 1_000_000),
        FieldType::Date => {
            let d = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default()
                + chrono::Days::new(seed % 5000);
            json!(format!("{}T00:00:00Z", d.format("%Y-%m-%d")))
        }
        FieldType::Datetime => {
            let t =
                chrono::DateTime::from_timestamp(1_577_836_800 + (seed % 300_000_000) as i64, 0)
                    .unwrap_or_default();
            json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        }
        FieldType::Bool => json!(seed.is_multiple_of(2)),
        FieldType::List | FieldType::MultiOption => {
            let n = 1 + seed % 3;
            json!(
                (0..n)
                    .map(|i| format!("SOL-{:05}-ABC", (seed / 7 + i * 13) % 100_000))
                    .collect::<Vec<_>>()
            )
        }
        FieldType::Lookup => return None,
    })
}

fn set_row(row: &CompiledRow, record: &mut Value, value: &Value) {
    let parts: Vec<Value> = if row.partner_center.len() > 1 {
        value.as_array().cloned().unwrap_or_default()
    } else {
        vec![value.clone()]
    };
    for (path, v) in row.partner_center.iter().zip(parts) {
        if let Some(p) = path.write_pointer() {
            set_pointer(record, p, path.write_value(&v));
        }
    }
}

fn check_mapping(
    project: &CompiledProject,
    mapping: &CompiledMapping,
    seeds: &[u64],
) -> Result<(), TestCaseError> {
    let projector = cosync::mapping::Projector {
        mapping,
        value_maps: &project.value_maps,
    };
    let mut referral = base_referral();
    let mut tested = Vec::new();
    for (i, row) in mapping.rows.iter().enumerate() {
        if !reversible(row) {
            continue;
        }
        if let Some(v) = value_for(row, &project.value_maps, seeds[i % seeds.len()]) {
            set_row(row, &mut referral, &v);
            tested.push(row);
        }
    }
    prop_assert!(
        tested.len() >= 6,
        "{}: only {} reversible rows tested",
        mapping.name,
        tested.len()
    );
    let crm = projector
        .project(Side::Crm, &referral, &EchoLookups)
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .to_record();
    let back = projector
        .project(Side::PartnerCenter, &crm, &EchoLookups)
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .to_record();
    for row in tested {
        let before = read_row(row, Side::PartnerCenter, &referral);
        let after = read_row(row, Side::PartnerCenter, &back);
        prop_assert!(
            same(row.ty, &before, &after, &row.separator),
            "{}: {before} became {after} (CRM record: {crm})",
            row.label
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_reversible_row_round_trips(seeds in prop::collection::vec(any::<u64>(), 32)) {
        let project = &*SHIPPED;
        prop_assert!(project.mappings.len() >= 2);
        for mapping in &project.mappings {
            check_mapping(project, mapping, &seeds)?;
        }

    }
}
