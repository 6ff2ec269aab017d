//! Choosing the connector set a command runs against: records in memory
//! (`--fixtures`), the embedded sandbox over HTTP (`sandbox: true` environments,
//! started in-process and seeded from the fixtures), or the real services of an
//! environment's connections.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::compile::CompiledProject;
use crate::connector::memory::MemoryConnectorSet;
use crate::connector::{HttpConnectorSet, SandboxEndpoints};
use crate::runtime::ConnectorSet;
use crate::sandbox::{Credentials, SandboxConfig, SandboxHandle, SandboxUrls};
use crate::spec::connector::ConnectorKind;
use crate::spec::flowtest::Given;

/// What a command runs against; keeps the in-process sandbox alive while in use.
pub(super) struct Target {
    /// The connector set.
    pub set: Box<dyn ConnectorSet>,
    /// The in-process sandbox, if one was started.
    pub sandbox: Option<SandboxHandle>,
    /// A line saying what this is, for people.
    pub description: String,
}

/// Reads a fixtures file (`connector: { entity: [records] }`, YAML or JSON) into
/// records per connector and entity (`{ file: ... }` entries are loaded relative
/// to it).
pub(super) fn read_fixtures(
    path: &Path,
) -> Result<BTreeMap<String, BTreeMap<String, Vec<Value>>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let located = crate::source::parse_yaml(&text).map_err(|d| {
        d.first()
            .map(|d| {
                format!(
                    "{}:{}: {}",
                    path.display(),
                    d.span.map_or(0, |s| s.start.line),
                    d.message
                )
            })
            .unwrap_or_default()
    })?;
    let given: Given = serde_json::from_value(located.value).map_err(|e| {
        format!(
            "{}: expected `connector: {{ entity: [records] }}`: {e}",
            path.display()
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = BTreeMap::new();
    for (connector, entities) in given {
        let mut per_entity = BTreeMap::new();
        for (entity, sources) in entities {
            let mut records = Vec::new();
            for source in &sources {
                records.extend(crate::flowtest::source_records(source, dir)?);
            }
            per_entity.insert(entity, records);
        }
        out.insert(connector, per_entity);
    }
    Ok(out)
}

/// In memory, seeded with `fixtures`.
pub(super) fn memory(
    project: &CompiledProject,
    fixtures: &BTreeMap<String, BTreeMap<String, Vec<Value>>>,
) -> Result<Target, String> {
    let memory = MemoryConnectorSet::new(project);
    for (connector, entities) in fixtures {
        for (entity, records) in entities {
            for r in records {
                memory.insert(connector, entity, r.clone())?;
            }
        }
    }
    Ok(Target {
        set: Box::new(memory),
        sandbox: None,
        description: "records in memory (--fixtures)".into(),
    })
}

/// The sandbox's seed document for fixtures: referrals as they are, Dataverse rows
/// by entity set with lookups as `@odata.bind`, Salesforce records by sObject.
fn seed_document(
    project: &CompiledProject,
    fixtures: &BTreeMap<String, BTreeMap<String, Vec<Value>>>,
) -> Result<Value, String> {
    let mut referrals = Vec::new();
    let mut dataverse = serde_json::Map::new();
    let mut salesforce = serde_json::Map::new();
    for (connector, entities) in fixtures {
        let c = project
            .connector_id(connector)
            .map(|id| project.connector(id))
            .ok_or_else(|| format!("fixtures name unknown connector `{connector}`"))?;
        for (entity, records) in entities {
            let spec = c.spec.entities.get(entity);
            let path = spec
                .and_then(|e| e.path.clone())
                .unwrap_or_else(|| entity.clone());
            match c.spec.kind {
                ConnectorKind::PartnerCenter => referrals.extend(records.iter().cloned()),
                ConnectorKind::Dataverse => {
                    let rows: Vec<Value> = records
                        .iter()
                        .map(|r| {
                            let Value::Object(fields) = r else {
                                return r.clone();
                            };
                            let mut out = serde_json::Map::new();
                            for (k, v) in fields {
                                let target = spec
                                    .and_then(|e| e.fields.get(k))
                                    .filter(|f| {
                                        f.field_type == crate::spec::mapping::FieldType::Lookup
                                    })
                                    .and_then(|f| f.target.clone());
                                match (target, v.as_str()) {
                                    (Some(t), Some(id)) => {
                                        let set = c
                                            .spec
                                            .entities
                                            .get(&t)
                                            .and_then(|e| e.path.clone())
                                            .unwrap_or(format!("{t}s"));
                                        out.insert(
                                            format!("{k}@odata.bind"),
                                            Value::String(format!("/{set}({id})")),
                                        );
                                    }
                                    _ => {
                                        out.insert(k.clone(), v.clone());
                                    }
                                }
                            }
                            Value::Object(out)
                        })
                        .collect();
                    if let Some(a) = dataverse
                        .entry(path)
                        .or_insert_with(|| json!([]))
                        .as_array_mut()
                    {
                        a.extend(rows);
                    }
                }
                ConnectorKind::Salesforce => {
                    if let Some(a) = salesforce
                        .entry(path)
                        .or_insert_with(|| json!([]))
                        .as_array_mut()
                    {
                        a.extend(records.iter().cloned());
                    }
                }
                ConnectorKind::Http => {
                    return Err(format!(
                        "the sandbox does not emulate the `http` connector `{connector}`"
                    ));
                }
            }
        }
    }
    Ok(
        json!({"partner_center": {"referrals": referrals}, "dataverse": dataverse, "salesforce": salesforce}),
    )
}

/// The endpoints the HTTP connectors use for a sandbox.
pub(super) fn endpoints(urls: &SandboxUrls) -> SandboxEndpoints {
    let c = Credentials::sandbox();
    SandboxEndpoints {
        partner_center: urls.partner_center.clone(),
        partner_center_webhooks: urls.partner_center_webhooks.clone(),
        dataverse: urls.dataverse.clone(),
        salesforce: urls.salesforce.clone(),
        login: urls.login.clone(),
        client_id: c.client_id.into(),
        client_secret: c.client_secret.into(),
        refresh_token: c.refresh_token.into(),
        salesforce_client_id: c.salesforce_client_id.into(),
        salesforce_client_secret: c.salesforce_client_secret.into(),
    }
}

/// The embedded sandbox: a running one named by `COSYNC_SANDBOX` (its JSON line),
/// else one started in-process and seeded with `fixtures`.
pub(super) async fn sandbox(
    project: &CompiledProject,
    fixtures: Option<&BTreeMap<String, BTreeMap<String, Vec<Value>>>>,
) -> Result<Target, String> {
    let (set, sandbox, description) = sandbox_set(project, fixtures).await?;
    Ok(Target {
        set: Box::new(set),
        sandbox,
        description,
    })
}

/// The HTTP connector set for the sandbox, the in-process sandbox if one was
/// started, and a description.
async fn sandbox_set(
    project: &CompiledProject,
    fixtures: Option<&BTreeMap<String, BTreeMap<String, Vec<Value>>>>,
) -> Result<(HttpConnectorSet, Option<SandboxHandle>, String), String> {
    if let Ok(line) = std::env::var("COSYNC_SANDBOX") {
        if fixtures.is_some() {
            return Err("COSYNC_SANDBOX names a running sandbox: seed it through its admin API instead of --fixtures".into());
        }
        let urls: SandboxUrls = serde_json::from_str(&line)
            .map_err(|e| format!("COSYNC_SANDBOX is not the sandbox's JSON line: {e}"))?;
        let set =
            HttpConnectorSet::for_sandbox(project, &endpoints(&urls)).map_err(|e| e.to_string())?;
        return Ok((set, None, format!("the running sandbox at {}", urls.admin)));
    }
    let seed_dir =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    if let Some(f) = fixtures {
        let doc = seed_document(project, f)?;
        std::fs::write(seed_dir.path().join("fixtures.json"), doc.to_string())
            .map_err(|e| format!("cannot write the seed: {e}"))?;
    }
    let config = SandboxConfig {
        seed_dir: Some(seed_dir.path().to_path_buf()),
        ..Default::default()
    };
    let handle = crate::sandbox::start(config)
        .await
        .map_err(|e| format!("cannot start the sandbox: {e}"))?;
    let set = HttpConnectorSet::for_sandbox(project, &endpoints(handle.urls()))
        .map_err(|e| e.to_string())?;
    let description = format!("the embedded sandbox (admin {})", handle.urls().admin);
    Ok((set, Some(handle), description))
}

/// The real services of an environment.
pub(super) fn live(project: &CompiledProject, env: &str) -> Result<Target, String> {
    let spec = project
        .project
        .as_ref()
        .ok_or("there is no cosync.yaml, so no environments")?;
    let environment = spec
        .environments
        .get(env)
        .ok_or_else(|| format!("no environment named `{env}` in cosync.yaml"))?;
    let set =
        HttpConnectorSet::new(project, &environment.connections).map_err(|e| e.to_string())?;
    Ok(Target {
        set: Box::new(set),
        sandbox: None,
        description: format!("environment `{env}`"),
    })
}

/// The HTTP connector set of an environment (starting the embedded sandbox for a
/// `sandbox: true` one), for commands that need HTTP specifically.
pub(super) async fn http(
    project: &CompiledProject,
    env: &str,
) -> Result<(HttpConnectorSet, Option<SandboxHandle>), String> {
    let spec = project
        .project
        .as_ref()
        .ok_or("there is no cosync.yaml, so no environments")?;
    let environment = spec
        .environments
        .get(env)
        .ok_or_else(|| format!("no environment named `{env}` in cosync.yaml"))?;
    if !environment.sandbox {
        return HttpConnectorSet::new(project, &environment.connections)
            .map(|s| (s, None))
            .map_err(|e| e.to_string());
    }
    let (set, handle, _) = sandbox_set(project, None).await?;
    Ok((set, handle))
}
