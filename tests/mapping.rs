//! The mapping engine on the shipped Dynamics 365 table: a referral projected onto
//! the CRM and back, a diff with no changes, and expression evaluation.

use std::hint::black_box;

use cosync::compile::mapping::CompiledLookup;
use cosync::compile::{CompiledProject, compile};
use cosync::expr::value::{CompiledText, Scope};
use cosync::mapping::coerce::scalar_text;
use cosync::mapping::{Lookups, Projector};
use cosync::source::Loader;
use cosync::spec::common::Side;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

/// Lookups answered from memory, as the interpreter's resolved lookups are.
struct Resolved;

impl Lookups for Resolved {
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
            .map(|s| Value::String(s.into())))
    }
}

fn shipped() -> CompiledProject {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let outcome = Loader::new().load(&[root]).unwrap_or_default();
    let (valid, _) = cosync::validate::validate(outcome);
    compile(&valid).unwrap_or_else(|e| panic!("{e}"))
}

fn referral() -> Value {
    json!({
        "id": "0f3c1a9e-5b7d-4e2a-9c41-6d2b8e7f1a03",
        "eTag": "\"00006d10-0000-0000-0000-5c70aa630000\"",
        "name": "Contoso cloud migration",
        "status": "Active",
        "substatus": "Accepted",
        "type": "Shared",
        "salesStage": "Develop",
        "consent": {"consentToShareReferralWithMicrosoftSellers": true},
        "customerProfile": {
            "name": "Contoso Ltd",
            "address": {"addressLine1": "1 Main St", "city": "Redmond", "state": "WA", "postalCode": "98052", "country": "US"},
            "team": [{"firstName": "Ana", "lastName": "Silva", "email": "ana@contoso.com", "phoneNumber": "1"}]
        },
        "details": {
            "dealValue": 25000.5, "currency": "USD", "closingDateTime": "2026-12-31T00:00:00Z", "notes": "Wants Azure",
            "requirements": {"solutions": [{"id": "SOL-12345-ABC"}, {"id": "SOL-67890-DEF"}]}
        },
        "inviteContext": {"assistanceRequestCode": "ProofOfConceptOrDemo"}
    })
}

fn mapping_benches(c: &mut Criterion) {
    let project = shipped();
    let id = project
        .mapping_id("referral-opportunity-dynamics365")
        .unwrap_or_else(|| panic!("shipped mapping missing"));
    let projector: Projector<'_> = project.projector(id);
    let pc = referral();
    let crm = match projector.project(Side::Crm, &pc, &Resolved) {
        Ok(p) => p.to_record(),
        Err(e) => panic!("{e}"),
    };
    let mut group = c.benchmark_group("mapping (shipped Dynamics 365 table)");
    group.throughput(Throughput::Elements(1));
    group.bench_function("project referral -> opportunity", |b| {
        b.iter(|| {
            black_box(
                projector
                    .project(Side::Crm, black_box(&pc), &Resolved)
                    .map(|p| p.writes.len()),
            )
        })
    });
    group.bench_function("project opportunity -> referral", |b| {
        b.iter(|| {
            black_box(
                projector
                    .project(Side::PartnerCenter, black_box(&crm), &Resolved)
                    .map(|p| p.writes.len()),
            )
        })
    });
    let projected = projector
        .project(Side::Crm, &pc, &Resolved)
        .unwrap_or_else(|e| panic!("{e}"));
    group.bench_function("diff projection vs opportunity (no changes)", |b| {
        b.iter(|| black_box(projector.diff(black_box(&projected), black_box(&crm)).len()))
    });
    group.bench_function("project + diff + to_record", |b| {
        b.iter(|| {
            let p = projector
                .project(Side::Crm, black_box(&pc), &Resolved)
                .unwrap_or_else(|e| panic!("{e}"));
            black_box((projector.diff(&p, &crm).len(), p.to_record()))
        })
    });
    group.finish();

    let condition = CompiledText::expression(
        project.env,
        "opportunity is none and referral.type == 'Shared'",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut scope = Scope::new();
    scope.set_json("referral", &pc);
    scope.set_json("opportunity", &Value::Null);
    let ctx = scope.to_value();
    let template = CompiledText::template(project.env, "{{ referral.details.dealValue * 1.1 }}")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("expressions");
    group.bench_function("condition (compiled once)", |b| {
        b.iter(|| black_box(condition.truthy(black_box(&ctx))))
    });
    group.bench_function("typed template value (compiled once)", |b| {
        b.iter(|| black_box(template.eval(black_box(&ctx))))
    });
    group.bench_function("build scope from a referral", |b| {
        b.iter(|| {
            let mut s = Scope::new();
            s.set_json("referral", black_box(&pc));
            black_box(s.to_value())
        })
    });
    group.finish();
}

criterion_group!(benches, mapping_benches);
criterion_main!(benches);
