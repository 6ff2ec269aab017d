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
    /// Read through Dataverse change tracking (`mode: change_tracking`) instead
    /// of polling by watermark.
    pub tracked: bool,
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
        let tracked = t.mode == ChangeMode::ChangeTracking;
        match out.iter_mut().find(|w| {
            w.connector == t.connector
                && w.entity == t.entity
                && w.where_fields == where_fields
                && w.tracked == tracked
        }) {
            Some(w) => w.flows.push((f.name.clone(), kinds)),
            None => out.push(Watch {
                connector: t.connector.clone(),
                entity: t.entity.clone(),
                where_fields,
                flows: vec![(f.name.clone(), kinds)],
                tracked,
            }),
        }
    }
    out
}

/// The events for one changed CRM record: one per flow that wants a kind of
/// change this one counts as, ordered by record, de-duplicated by record version.
/// `changes` lists those kinds, the preferred first: a record created and then
/// modified since the last poll is `[Created, Updated]`, so a flow that takes
/// both sees `created` and a flow that takes only updates still sees the update.
/// The de-duplication key leaves the kind out, so one version runs a flow once.
pub fn crm_events(watch: &Watch, id: &str, version: &str, changes: &[ChangeKind]) -> Vec<NewEvent> {
    watch
        .flows
        .iter()
        .filter_map(|(flow, kinds)| {
            let change = changes.iter().find(|c| kinds.contains(c))?;
            let change_name = match change {
                ChangeKind::Created => "created",
                ChangeKind::Updated => "updated",
            };
            Some(NewEvent {
                source: watch.connector.clone(),
                record_key: format!("{}:{}:{id}", watch.connector, watch.entity),
                dedupe_key: format!(
                    "{}:{}:{id}:{version}:{flow}",
                    watch.connector, watch.entity
                ),
                flow: Some(flow.clone()),
                payload: json!({"record_id": id, "record": {}, "change": change_name, "version": version}),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChangeKind::{Created, Updated};

    fn watch() -> Watch {
        Watch {
            connector: "dynamics365".into(),
            entity: "opportunity".into(),
            where_fields: Vec::new(),
            flows: vec![
                ("both".into(), vec![Created, Updated]),
                ("creates".into(), vec![Created]),
                ("updates".into(), vec![Updated]),
            ],
            tracked: false,
        }
    }

    /// (flow, change) of each event.
    fn kinds(events: &[NewEvent]) -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e.flow.clone().unwrap_or_default(),
                    e.payload["change"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(f, c)| (f.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn each_flow_gets_the_first_kind_it_wants() {
        let w = watch();
        assert_eq!(
            kinds(&crm_events(&w, "a", "v1", &[Created])),
            pairs(&[("both", "created"), ("creates", "created")])
        );
        assert_eq!(
            kinds(&crm_events(&w, "a", "v2", &[Updated])),
            pairs(&[("both", "updated"), ("updates", "updated")])
        );
        assert_eq!(
            kinds(&crm_events(&w, "a", "v1", &[Created, Updated])),
            pairs(&[
                ("both", "created"),
                ("creates", "created"),
                ("updates", "updated")
            ])
        );
    }

    #[test]
    fn the_dedupe_key_is_the_same_whatever_the_kind() {
        let w = watch();
        let first = crm_events(&w, "a", "v1", &[Created, Updated]);
        let again = crm_events(&w, "a", "v1", &[Updated]);
        for e in &again {
            assert!(
                first.iter().any(|f| f.dedupe_key == e.dedupe_key),
                "{} has no twin in {:?}",
                e.dedupe_key,
                first.iter().map(|f| &f.dedupe_key).collect::<Vec<_>>()
            );
        }
    }
}
