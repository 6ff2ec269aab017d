//! Which flows an event starts: Partner Center webhook events go to the enabled
//! flows whose `partner_center` trigger lists the event; CRM changes go to the
//! enabled flows whose `crm_change` trigger watches the connector and entity.

use serde_json::{Value, json};

use crate::compile::CompiledProject;
use crate::spec::flow::{ChangeKind, ChangeMode, TriggerSpec};
use crate::store::NewEvent;

/// The enabled flows a Partner Center event starts.
pub fn partner_center_flows<'p>(project: &'p CompiledProject, event: &str) -> Vec<&'p str> {
    project
        .flows
        .iter()
        .filter(|f| f.enabled)
        .filter(|f| match &f.trigger {
            Some(TriggerSpec::PartnerCenter(t)) => {
                t.events.is_empty() || t.events.iter().any(|e| e.as_str() == event)
            }
            _ => false,
        })
        .map(|f| f.name.as_str())
        .collect()
}

/// One CRM entity to poll, and the flows its changes start.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// Connector name.
    pub connector: String,
    /// Entity name.
    pub entity: String,
    /// Field equalities every change must satisfy (`where`).
    pub where_fields: Vec<(String, Value)>,
    /// The flows, with the change kinds each wants.
    pub flows: Vec<(String, Vec<ChangeKind>)>,
}

/// The CRM entities to poll: one [`Watch`] per connector, entity and filter.
pub fn watches(project: &CompiledProject) -> Vec<Watch> {
    let mut out: Vec<Watch> = Vec::new();
    for f in project.flows.iter().filter(|f| f.enabled) {
        let Some(TriggerSpec::CrmChange(t)) = &f.trigger else {
            continue;
        };
        if t.mode == ChangeMode::Webhook {
            continue;
        }
        let where_fields: Vec<(String, Value)> = t
            .where_fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let kinds = if t.on.is_empty() {
            vec![ChangeKind::Created, ChangeKind::Updated]
        } else {
            t.on.clone()
        };
        match out.iter_mut().find(|w| {
            w.connector == t.connector && w.entity == t.entity && w.where_fields == where_fields
        }) {
            Some(w) => w.flows.push((f.name.clone(), kinds)),
            None => out.push(Watch {
                connector: t.connector.clone(),
                entity: t.entity.clone(),
                where_fields,
                flows: vec![(f.name.clone(), kinds)],
            }),
        }
    }
    out
}

/// The events for one changed CRM record: one per flow that wants this kind of
/// change, ordered by record, de-duplicated by record version.
pub fn crm_events(watch: &Watch, id: &str, version: &str, change: ChangeKind) -> Vec<NewEvent> {
    let change_name = match change {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
    };
    watch
        .flows
        .iter()
        .filter(|(_, kinds)| kinds.contains(&change))
        .map(|(flow, _)| NewEvent {
            source: watch.connector.clone(),
            record_key: format!("{}:{}:{id}", watch.connector, watch.entity),
            dedupe_key: format!(
                "{}:{}:{id}:{version}:{flow}",
                watch.connector, watch.entity
            ),
            flow: Some(flow.clone()),
            payload: json!({"record_id": id, "record": {}, "change": change_name, "version": version}),
        })
        .collect()
}
