//! `cosync schema`: writes (or checks) one JSON Schema per file kind.

use super::Outcome;
use super::args::SchemaArgs;
use crate::spec::FileKind;

/// The generated schema files: (file name, pretty JSON text).
pub fn generate() -> Vec<(String, String)> {
    FileKind::ALL
        .iter()
        .map(|k| {
            let text = serde_json::to_string_pretty(&k.schema()).unwrap_or_default() + "\n";
            (k.schema_file(), text)
        })
        .collect()
}

/// Runs `cosync schema`.
pub fn run(args: &SchemaArgs) -> Outcome {
    let files = generate();
    if args.check {
        let mut stale = Vec::new();
        for (name, text) in &files {
            let path = args.out.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        if stale.is_empty() {
            println!("{} schemas are up to date", files.len());
            return Outcome::Success;
        }
        for s in stale {
            eprintln!("out of date: {s}");
        }
        eprintln!(
            "run `cosync schema --out {}` and commit the result",
            args.out.display()
        );
        return Outcome::Problems;
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: {}: {e}", args.out.display());
        return Outcome::Usage;
    }
    for (name, text) in &files {
        let path = args.out.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: {}: {e}", path.display());
            return Outcome::Usage;
        }
        println!("wrote {}", path.display());
    }
    Outcome::Success
}
