//! `cosync metadata pull`: saves each CRM connector's entity metadata (field names,
//! types, picklist values) as `metadata/<connector>.json`, which `cosync validate`
//! then checks mappings against — offline, in CI.

use serde_json::json;

use super::Outcome;
use super::args::MetadataArgs;
use crate::spec::connector::ConnectorKind;

/// Runs `cosync metadata pull`.
pub(super) fn run(args: &MetadataArgs, color: bool) -> Outcome {
    let project = match super::project::load(std::slice::from_ref(&args.project), color) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let env = args
        .env
        .clone()
        .or_else(|| {
            project
                .project
                .as_ref()
                .and_then(|p| p.default_environment.clone())
        })
        .unwrap_or_else(|| "sandbox".to_string());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.project.join("metadata"));
    let rt = match super::project::runtime() {
        Ok(rt) => rt,
        Err(o) => return o,
    };
    let result: Result<usize, String> = rt.block_on(async {
        let (set, sandbox) = super::environment::http(&project, &env).await?;
        std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let mut written = 0;
        for c in &project.connectors {
            if !matches!(
                c.spec.kind,
                ConnectorKind::Dataverse | ConnectorKind::Salesforce
            ) || c.spec.entities.is_empty()
            {
                continue;
            }
            let entities = set
                .pull_metadata(&c.name, &[])
                .await
                .map_err(|e| format!("{}: {e}", c.name))?;
            let doc = json!({
                "connector": c.name,
                "kind": c.spec.kind.as_str(),
                "environment": env,
                "pulled_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "entities": entities,
            });
            let path = out.join(format!("{}.json", c.name));
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("wrote {}", path.display());
            written += 1;
        }
        if let Some(handle) = sandbox {
            handle.shutdown().await;
        }
        Ok(written)
    });
    match result {
        Ok(0) => {
            eprintln!("warning: no Dataverse or Salesforce connector with entities to pull");
            Outcome::Success
        }
        Ok(_) => Outcome::Success,
        Err(e) => {
            eprintln!("error: {e}");
            Outcome::Problems
        }
    }
}
