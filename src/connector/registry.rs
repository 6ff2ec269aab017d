//! The one list of built-in connector kinds: the operations each offers to `call`
//! steps (besides the standard get / find / create / update / upsert), and the
//! constructor of its HTTP implementation.

use super::Connector;
use super::set::{BuildContext, ConnectorConfigError};
use crate::spec::connector::ConnectorKind;

/// A built-in operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinOperation {
    /// Name used in `call` steps.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// True when the operation changes data (not run under `--dry-run`).
    pub writes: bool,
}

const fn op(name: &'static str, description: &'static str, writes: bool) -> BuiltinOperation {
    BuiltinOperation {
        name,
        description,
        writes,
    }
}

const PARTNER_CENTER: &[BuiltinOperation] = &[
    op(
        "list_referrals",
        "GET /v1.0/engagements/referrals with OData $filter/$orderby/$top, following @odata.nextLink",
        false,
    ),
    op(
        "get_referral",
        "GET /v1.0/engagements/referrals/{id}",
        false,
    ),
    op("create_referral", "POST /v1.0/engagements/referrals", true),
    op(
        "update_referral",
        "PATCH /v1.0/engagements/referrals/{id} with a JSON-Patch document",
        true,
    ),
    op(
        "replace_referral",
        "PUT /v1.0/engagements/referrals/{id} with If-Match (deprecated upstream)",
        true,
    ),
    op(
        "register_webhook",
        "POST (or PUT with replace) /webhooks/v1/registration",
        true,
    ),
    op(
        "get_webhook_registration",
        "GET /webhooks/v1/registration",
        false,
    ),
    op(
        "update_webhook_registration",
        "PUT /webhooks/v1/registration",
        true,
    ),
    op(
        "list_webhook_events",
        "GET /webhooks/v1/registration/events",
        false,
    ),
    op(
        "send_test_event",
        "POST /webhooks/v1/registration/validationEvents",
        true,
    ),
    op(
        "get_test_event",
        "GET /webhooks/v1/registration/validationEvents/{correlationId}",
        false,
    ),
];

const DATAVERSE: &[BuiltinOperation] = &[
    op(
        "win_opportunity",
        "POST /api/data/v9.2/WinOpportunity",
        true,
    ),
    op(
        "lose_opportunity",
        "POST /api/data/v9.2/LoseOpportunity",
        true,
    ),
    op(
        "entity_metadata",
        "GET EntityDefinitions with attributes and option sets",
        false,
    ),
    op(
        "changes",
        "Change tracking: rows changed since a delta link",
        false,
    ),
    op(
        "modified_since",
        "Polling: ids, modification and creation times of rows modified since a watermark (modifiedon, key as tie-breaker)",
        false,
    ),
];

const SALESFORCE: &[BuiltinOperation] = &[
    op(
        "soql_query",
        "GET /services/data/vXX.X/query?q=SOQL, following nextRecordsUrl",
        false,
    ),
    op(
        "modified_since",
        "Polling: ids, modification and creation times of records modified since a watermark (SystemModstamp, Id as tie-breaker)",
        false,
    ),
    op(
        "describe",
        "GET /services/data/vXX.X/sobjects/{type}/describe",
        false,
    ),
    op(
        "composite_update",
        "PATCH /services/data/vXX.X/composite/sobjects (up to 200 records)",
        true,
    ),
    op(
        "upsert_by_external_id",
        "PATCH /services/data/vXX.X/sobjects/{type}/{field}/{value}",
        true,
    ),
];

/// Builds the HTTP implementation of one connector.
pub(crate) type Constructor =
    fn(&BuildContext<'_>) -> Result<Box<dyn Connector>, ConnectorConfigError>;

/// A built-in kind's implementation.
pub(crate) struct Implementation {
    /// The kind.
    pub(crate) kind: ConnectorKind,
    /// Its `call` operations.
    pub(crate) operations: &'static [BuiltinOperation],
    /// Its constructor.
    pub(crate) build: Constructor,
}

/// Every built-in kind with its implementation.
const IMPLEMENTATIONS: &[Implementation] = &[
    Implementation {
        kind: ConnectorKind::PartnerCenter,
        operations: PARTNER_CENTER,
        build: super::partner_center::build,
    },
    Implementation {
        kind: ConnectorKind::Dataverse,
        operations: DATAVERSE,
        build: super::dataverse::build,
    },
    Implementation {
        kind: ConnectorKind::Salesforce,
        operations: SALESFORCE,
        build: super::salesforce::build,
    },
    Implementation {
        kind: ConnectorKind::Http,
        operations: &[],
        build: super::declarative::build,
    },
];

/// The implementation of a kind.
pub(crate) fn implementation(kind: ConnectorKind) -> Option<&'static Implementation> {
    IMPLEMENTATIONS.iter().find(|i| i.kind == kind)
}

/// Every built-in kind.
pub const KINDS: &[ConnectorKind] = &[
    ConnectorKind::PartnerCenter,
    ConnectorKind::Dataverse,
    ConnectorKind::Salesforce,
    ConnectorKind::Http,
];

/// The built-in operations of a kind.
pub fn builtin_operations(kind: ConnectorKind) -> &'static [BuiltinOperation] {
    implementation(kind).map_or(&[], |i| i.operations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_an_implementation() {
        for kind in KINDS {
            assert!(implementation(*kind).is_some(), "{kind:?}");
        }
        assert!(
            builtin_operations(ConnectorKind::Dataverse)
                .iter()
                .any(|o| o.name == "win_opportunity" && o.writes)
        );
    }
}
