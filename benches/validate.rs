//! `cosync validate` on the shipped solution: file discovery and reading, YAML
//! parsing with positions, JSON Schema checks and every lint rule.

use std::hint::black_box;
use std::path::PathBuf;

use cosync::source::Loader;
use criterion::{Criterion, criterion_group, criterion_main};

fn validate_shipped_solution(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings");
    // Warm the lazily built schema validators once, as a long-running CLI would.
    if let Ok(outcome) = Loader::new().load(std::slice::from_ref(&root)) {
        let _ = cosync::validate::validate(outcome);
    }
    c.bench_function("validate mappings/ (read + parse + schema + lints)", |b| {
        b.iter(|| {
            let outcome = Loader::new().load(std::slice::from_ref(&root));
            black_box(
                outcome
                    .map(cosync::validate::validate)
                    .map(|(_, d)| d.0.len()),
            )
        })
    });
}

criterion_group!(benches, validate_shipped_solution);
criterion_main!(benches);
