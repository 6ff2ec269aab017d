use serde_json::json;

use super::*;
use crate::compile::CompiledProject;

pub(crate) fn base_project() -> CompiledProject {
    crate::compile::compile_folder(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validate/_base"),
    )
}

fn referral() -> Value {
    json!({
        "id": "7c9b1f7e-0000-4000-8000-000000000001",
        "name": "Contoso cloud migration",
        "status": "Active",
        "substatus": "Accepted",
        "details": {
            "dealValue": 25000.5,
            "currency": "USD",
            "closingDateTime": "2026-03-31T00:00:00Z",
            "notes": "Wants Azure",
            "requirements": {"solutions": [{"id": "SOL-1-ABC"}, {"id": "SOL-2-DEF"}]}
        },
        "inviteContext": {"assistanceRequestCode": "ProofOfConceptOrDemo"}
    })
}

fn projector(p: &CompiledProject) -> Projector<'_> {
    p.projector(
        p.mapping_id("referral-opportunity")
            .unwrap_or(crate::compile::MappingId(0)),
    )
}

#[test]
fn projects_a_referral_to_the_crm() {
    let p = base_project();
    let out = projector(&p).project(Side::Crm, &referral(), &NoLookups);
    let record = out.map(|o| o.to_record()).unwrap_or_default();
    assert_eq!(
        record,
        json!({
            "name": "Contoso cloud migration",
            "estimatedvalue": 25000.5,
            "estimatedclosedate": "2026-03-31",
            "description": "Wants Azure",
            "statecode": 0,
            "statuscode": 1,
            "help": 2,
            "products": "SOL-1-ABC,SOL-2-DEF",
            "referral_id": "7c9b1f7e-0000-4000-8000-000000000001"
        })
    );
}

#[test]
fn projecting_back_gives_the_original_values() {
    let p = base_project();
    let pr = projector(&p);
    let crm = pr
        .project(Side::Crm, &referral(), &NoLookups)
        .map(|o| o.to_record())
        .unwrap_or_default();
    let back = pr
        .project(Side::PartnerCenter, &crm, &NoLookups)
        .map(|o| o.to_record())
        .unwrap_or_default();
    assert_eq!(back["name"], "Contoso cloud migration");
    assert_eq!(back["status"], "Active");
    assert_eq!(back["substatus"], "Accepted");
    assert_eq!(back["details"]["dealValue"], 25000.5);
    assert_eq!(back["details"]["closingDateTime"], "2026-03-31T00:00:00Z");
    assert_eq!(
        back["details"]["requirements"]["solutions"],
        json!([{"id": "SOL-1-ABC"}, {"id": "SOL-2-DEF"}])
    );
    // one-way rows do not come back
    assert!(back.get("id").is_none());
    assert!(back.get("inviteContext").is_none());
}

#[test]
fn diff_ignores_representation_differences() {
    let p = base_project();
    let pr = projector(&p);
    let projected = pr
        .project(Side::Crm, &referral(), &NoLookups)
        .unwrap_or(Projected {
            target: Side::Crm,
            writes: vec![],
        });
    let current = json!({
        "name": "Contoso cloud migration",
        "estimatedvalue": "25000.50",
        "estimatedclosedate": "2026-03-31T00:00:00Z",
        "description": "Wants Azure",
        "statecode": "0",
        "statuscode": 1,
        "help": 2,
        "products": "SOL-2-DEF,SOL-1-ABC",
        "referral_id": "7c9b1f7e-0000-4000-8000-000000000001"
    });
    assert_eq!(pr.diff(&projected, &current), vec![]);
    let mut changed = current.clone();
    changed["estimatedvalue"] = json!(1000);
    changed["statuscode"] = json!(2);
    let changes = pr.diff(&projected, &changed);
    let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, vec!["estimatedvalue", "statuscode"]);
    assert_eq!(changes[0].old, json!(1000));
    assert_eq!(changes[0].new, json!(25000.5));
}

#[test]
fn missing_required_and_unmapped_values_fail_clearly() {
    let p = base_project();
    let pr = projector(&p);
    let mut r = referral();
    r["name"] = Value::Null;
    let e = pr.project(Side::Crm, &r, &NoLookups).err();
    assert_eq!(e.as_ref().map(|e| e.kind), Some(MapErrorKind::Required));
    assert_eq!(
        e.map(|e| e.to_string()),
        Some("name: a value is required but the source has none".to_string())
    );
    let mut r = referral();
    r["substatus"] = json!("Won");
    let e = pr.project(Side::Crm, &r, &NoLookups).err();
    assert_eq!(e.as_ref().map(|e| e.kind), Some(MapErrorKind::Unmapped));
    assert!(
        e.map(|e| e.message)
            .unwrap_or_default()
            .contains("[Active,Won]")
    );
    // the help map has a default: unmapped codes become null instead of failing
    let mut r = referral();
    r["inviteContext"]["assistanceRequestCode"] = json!("QuotesOrLicensing");
    let out = pr
        .project(Side::Crm, &r, &NoLookups)
        .map(|o| o.to_record())
        .unwrap_or_default();
    assert_eq!(out["help"], Value::Null);
}

#[test]
fn bad_values_are_type_errors() {
    let p = base_project();
    let mut r = referral();
    r["details"]["dealValue"] = json!("lots");
    let e = projector(&p).project(Side::Crm, &r, &NoLookups).err();
    assert_eq!(e.as_ref().map(|e| e.kind), Some(MapErrorKind::Type));
    assert_eq!(
        e.map(|e| e.to_string()),
        Some("estimatedvalue: `lots` is not a valid money".to_string())
    );
}

#[test]
fn three_way_merge_follows_the_changed_side_and_policies() {
    let p = base_project();
    let pr = projector(&p);
    let pc = referral();
    let crm = pr
        .project(Side::Crm, &pc, &NoLookups)
        .map(|o| o.to_record())
        .unwrap_or_default();
    let base = snapshot(&pr, &pc, &crm);
    // in sync: nothing to do
    let m = merge(&pr, &pc, &crm, Some(&base), &NoLookups, None).unwrap_or_default();
    assert_eq!(m, Merge::default());
    // CRM edits the description: flows to Partner Center only
    let mut crm2 = crm.clone();
    crm2["description"] = json!("Wants Azure and Fabric");
    let m = merge(&pr, &pc, &crm2, Some(&base), &NoLookups, None).unwrap_or_default();
    assert!(m.to_crm.is_empty());
    assert_eq!(m.to_partner_center.len(), 1);
    assert_eq!(m.to_partner_center[0].key, "/details/notes");
    // both edit the status: the row's policy (partner_center) wins
    let mut pc2 = pc.clone();
    pc2["status"] = json!("Closed");
    pc2["substatus"] = json!("Won");
    let mut crm3 = crm.clone();
    crm3["statecode"] = json!(2);
    crm3["statuscode"] = json!(4);
    let m = merge(&pr, &pc2, &crm3, Some(&base), &NoLookups, None).unwrap_or_default();
    let keys: Vec<&str> = m.to_crm.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, vec!["statecode", "statuscode"]);
    assert!(m.to_partner_center.is_empty());
    // both edit the description: `newest` follows the newer side
    let mut pc3 = pc.clone();
    pc3["details"]["notes"] = json!("PC notes");
    let m = merge(&pr, &pc3, &crm2, Some(&base), &NoLookups, Some(Side::Crm)).unwrap_or_default();
    assert_eq!(m.to_partner_center.len(), 1);
    assert!(m.to_crm.is_empty());
}

#[test]
fn a_target_value_that_maps_back_to_the_source_is_not_a_change() {
    let p = base_project();
    let pr = projector(&p);
    // The CRM says "lost" [2, 4]; Partner Center says Closed/Declined, which maps to
    // [2, 4] as well: projecting would write Closed/Lost, but nothing changed.
    let crm = json!({"name": "x", "statecode": 2, "statuscode": 4});
    let projected = pr
        .project(Side::PartnerCenter, &crm, &NoLookups)
        .unwrap_or(Projected {
            target: Side::PartnerCenter,
            writes: vec![],
        });
    let mut pc = referral();
    pc["name"] = json!("x");
    pc["status"] = json!("Closed");
    pc["substatus"] = json!("Declined");
    let changes = pr.diff(&projected, &pc);
    assert!(
        changes
            .iter()
            .all(|c| c.key != "/status" && c.key != "/substatus"),
        "{changes:?}"
    );
    // ... while a real difference still is one.
    pc["substatus"] = json!("Won");
    let changes = pr.diff(&projected, &pc);
    assert!(changes.iter().any(|c| c.key == "/substatus"), "{changes:?}");
}
