//! The `partner_center` kind: the Referrals API v1.0 (list with OData `$filter` /
//! `$orderby` / `$top` following `@odata.nextLink`, get, create, update by PATCH
//! with a JSON-Patch document, replace by PUT with `If-Match`) and, on its own
//! host, the webhook registration API (`partner_center_webhooks.rs`). Records are
//! the referral JSON as Partner Center sends it.

use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use super::Connector;
use super::http::{Call, Connection, join, segment};
use super::json_patch;
use super::odata;
use super::operations::Operations;
use super::partner_center_webhooks as webhooks;
use super::set::{BuildContext, ConnectorConfigError};
use super::support::{
    Entities, MAX_PAGES, filter_limit, input_text, invalid, object, pairs, required_text,
    safe_name, text_of,
};
use super::wire::Dialect;
use crate::runtime::connectors::{BoxFuture, ConnectorError, Request};
use crate::runtime::{read_field, write_field};
use crate::spec::project::{AuthSpec, ConnectionSpec, LimitsSpec};

const REFERRALS: &str = "engagements/referrals";
const PRODUCTION_REFERRALS_HOST: &str = "api.partner.microsoft.com";
const PRODUCTION_WEBHOOKS_HOST: &str = "api.partnercenter.microsoft.com";

/// A Partner Center connector.
pub(crate) struct PartnerCenter {
    referrals: Connection,
    webhooks: Option<Connection>,
    version: String,
    entities: Entities,
    extra: Operations,
}

/// The webhook registration API's connection: same credentials, for the webhook
/// host's audience (`resource` / `scope` naming the referrals API are rewritten).
fn webhooks_connection(spec: &ConnectionSpec) -> Option<ConnectionSpec> {
    let base = spec.base_url.as_deref().unwrap_or_default();
    let url = spec.webhooks_url.clone().or_else(|| {
        Url::parse(base)
            .ok()
            .filter(|u| u.host_str() == Some(PRODUCTION_REFERRALS_HOST))
            .map(|_| format!("https://{PRODUCTION_WEBHOOKS_HOST}"))
    })?;
    let mut s = spec.clone();
    let audience = |text: &str| -> String {
        if text.contains(PRODUCTION_REFERRALS_HOST) {
            text.replace(PRODUCTION_REFERRALS_HOST, PRODUCTION_WEBHOOKS_HOST)
        } else if !base.is_empty() && text.starts_with(base.trim_end_matches('/')) {
            text.replacen(base.trim_end_matches('/'), url.trim_end_matches('/'), 1)
        } else {
            text.to_string()
        }
    };
    if let Some(AuthSpec::Oauth2(o)) = &mut s.auth {
        o.scope = o.scope.as_deref().map(audience);
        o.resource = o.resource.as_deref().map(audience);
    }
    s.base_url = Some(url);
    s.webhooks_url = None;
    Some(s)
}

/// Builds a `partner_center` connector.
pub(crate) fn build(cx: &BuildContext<'_>) -> Result<Box<dyn Connector>, ConnectorConfigError> {
    let name = &cx.connector.name;
    let limits = LimitsSpec::default();
    Ok(Box::new(PartnerCenter {
        referrals: Connection::new(
            name,
            Dialect::PartnerCenter,
            cx.client,
            cx.connection,
            &limits,
        ),
        webhooks: webhooks_connection(cx.connection)
            .map(|s| Connection::new(name, Dialect::PartnerCenter, cx.client, &s, &limits)),
        version: cx
            .connector
            .spec
            .api_version
            .clone()
            .unwrap_or_else(|| "v1.0".into()),
        entities: Entities::new(&cx.connector.spec.entities),
        extra: Operations::compile(cx.env, name, &cx.connector.spec)?,
    }))
}

/// A referral as sent in a create or PUT body: without `links`, the `eTag` and
/// OData annotations, which are response-only.
fn outgoing(record: &Value) -> Value {
    match record {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "links" && *k != "eTag" && !k.starts_with("@odata."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Options of a referral list.
#[derive(Default)]
struct ListQuery {
    filter: Option<String>,
    orderby: Option<String>,
    top: Option<u32>,
    select: Option<String>,
}

impl PartnerCenter {
    fn collection(&self, entity: &str) -> Result<Url, ConnectorError> {
        let path = self.entities.path(entity, |_| REFERRALS.to_string());
        join(
            &self.referrals.base()?,
            &format!("/{}/{}", self.version, path.trim_matches('/')),
        )
    }

    fn item(&self, entity: &str, id: &str) -> Result<Url, ConnectorError> {
        if id.is_empty() {
            return Err(invalid("a referral id is empty"));
        }
        let base = self.collection(entity)?;
        join(&base, &format!("/{}", segment(id)))
    }

    async fn get(&self, entity: &str, id: &str) -> Result<Value, ConnectorError> {
        let reply = self
            .referrals
            .send(Call::new(Method::GET, self.item(entity, id)?))
            .await?;
        Ok(reply.body)
    }

    async fn list(
        &self,
        entity: &str,
        q: &ListQuery,
        limit: Option<usize>,
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut url = self.collection(entity)?;
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in [
                ("$filter", &q.filter),
                ("$orderby", &q.orderby),
                ("$select", &q.select),
            ] {
                if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                    pairs.append_pair(k, v);
                }
            }
            if let Some(top) = q.top {
                pairs.append_pair("$top", &top.to_string());
            }
        }
        let base = self.referrals.base()?;
        let mut out = Vec::new();
        let mut next = Some(url);
        let mut pages = 0;
        while let Some(url) = next.take() {
            let reply = self
                .referrals
                .send(Call::new(Method::GET, url.clone()))
                .await?;
            if let Some(items) = reply.body.get("value").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            pages += 1;
            if limit.is_some_and(|l| out.len() >= l) || pages >= MAX_PAGES {
                break;
            }
            if let Some(link) = reply.body.get("@odata.nextLink").and_then(Value::as_str) {
                let link = self.referrals.resolve_url(&base, link)?;
                // A link to the same page would never end.
                next = (link != url).then_some(link);
            }
        }
        if let Some(l) = limit {
            out.truncate(l);
        }
        Ok(out)
    }

    fn filter(where_fields: &[(String, Value)]) -> Result<Option<String>, ConnectorError> {
        let mut clauses = Vec::new();
        for (field, value) in where_fields {
            let name = field.trim_start_matches('/');
            if !safe_name(name, &['/']) {
                return Err(invalid(format!(
                    "`{field}` cannot be used in an OData filter"
                )));
            }
            let literal = odata::literal(value)
                .ok_or_else(|| invalid(format!("`{field}`: only a single value can be matched")))?;
            clauses.push(format!("{name} eq {literal}"));
        }
        Ok((!clauses.is_empty()).then(|| clauses.join(" and ")))
    }

    async fn find(
        &self,
        entity: &str,
        where_fields: &[(String, Value)],
        select: &[String],
        limit: Option<u32>,
    ) -> Result<Value, ConnectorError> {
        let mut top: Vec<String> = select
            .iter()
            .filter_map(|s| {
                s.trim_start_matches('/')
                    .split('/')
                    .next()
                    .map(str::to_string)
            })
            .filter(|s| safe_name(s, &[]))
            .collect();
        top.dedup();
        let q = ListQuery {
            filter: Self::filter(where_fields)?,
            top: limit,
            select: (!top.is_empty()).then(|| top.join(",")),
            ..ListQuery::default()
        };
        let rows = self.list(entity, &q, limit.map(|l| l as usize)).await?;
        Ok(Value::Array(filter_limit(rows, where_fields, limit)))
    }

    async fn create(&self, entity: &str, record: &Value) -> Result<Value, ConnectorError> {
        object(record, "a referral")?;
        let call = Call::new(Method::POST, self.collection(entity)?).json(outgoing(record));
        let reply = self.referrals.send(call).await?;
        match reply.body {
            Value::Object(_) => Ok(reply.body),
            _ => match reply.header("Location").map(str::to_string) {
                Some(loc) => {
                    let url = self
                        .referrals
                        .resolve_url(&self.collection(entity)?, &loc)?;
                    Ok(self.referrals.send(Call::new(Method::GET, url)).await?.body)
                }
                None => Ok(record.clone()),
            },
        }
    }

    async fn patch(
        &self,
        entity: &str,
        id: &str,
        ops: Vec<Value>,
        if_match: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        let mut call = Call::new(Method::PATCH, self.item(entity, id)?)
            .header("Prefer", "return=representation")
            .json(Value::Array(ops));
        if let Some(tag) = if_match.filter(|t| !t.is_empty()) {
            call = call.header("If-Match", tag);
        }
        let reply = self.referrals.send(call).await?;
        match reply.body {
            Value::Object(_) => Ok(reply.body),
            _ => self.get(entity, id).await,
        }
    }

    async fn update(
        &self,
        entity: &str,
        id: &str,
        changes: &Value,
        if_match: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        let changes = object(changes, "the changes")?;
        let current = self.get(entity, id).await?;
        let ops = json_patch::build(&current, changes);
        if ops.is_empty() {
            return Ok(current);
        }
        self.patch(entity, id, ops, if_match).await
    }

    async fn upsert(
        &self,
        entity: &str,
        match_fields: &[(String, Value)],
        record: Value,
    ) -> Result<Value, ConnectorError> {
        let found = self.find(entity, match_fields, &[], Some(1)).await?;
        let key_field = self.entities.key(entity, |_| "id".into());
        match found
            .as_array()
            .and_then(|a| a.first())
            .and_then(|r| text_of(&read_field(r, &key_field)))
        {
            Some(id) => self.update(entity, &id, &record, None).await,
            None => {
                let mut record = record;
                for (k, v) in match_fields {
                    write_field(&mut record, k, v.clone());
                }
                self.create(entity, &record).await
            }
        }
    }

    /// The referral id named by `inputs` (`id`, `key`, `referral_id`, or a webhook's
    /// `resource_uri`, which must be on a configured host).
    fn referral_id(&self, inputs: &Value, operation: &str) -> Result<String, ConnectorError> {
        if let Some(id) = input_text(inputs, &["id", "key", "referral_id", "referralId"]) {
            return Ok(id);
        }
        let uri = required_text(inputs, &["resource_uri", "ResourceUri", "id"], operation)?;
        let url =
            Url::parse(&uri).map_err(|e| invalid(format!("resource_uri is not a URL ({e})")))?;
        let checked = self.referrals.check(&url);
        if checked.is_err()
            && let Some(w) = &self.webhooks
            && w.check(&url).is_ok()
        {
            return crate::runtime::trigger::resource_id(&uri)
                .ok_or_else(|| invalid("resource_uri names no referral"));
        }
        checked?;
        crate::runtime::trigger::resource_id(&uri)
            .ok_or_else(|| invalid("resource_uri names no referral"))
    }

    async fn replace(&self, inputs: &Value) -> Result<Value, ConnectorError> {
        let referral = inputs.get("referral").unwrap_or(inputs);
        object(referral, "the referral")?;
        let id = match input_text(inputs, &["id", "key"]) {
            Some(id) => id,
            None => required_text(referral, &["id"], "replace_referral")?,
        };
        let tag = input_text(inputs, &["if_match", "eTag", "etag"])
            .or_else(|| input_text(referral, &["eTag"]))
            .ok_or_else(|| invalid("replace_referral needs `if_match` (the eTag of the last read): Partner Center requires If-Match on PUT"))?;
        let call = Call::new(Method::PUT, self.item("referral", &id)?)
            .header("If-Match", tag)
            .json(outgoing(referral));
        let reply = self.referrals.send(call).await?;
        match reply.body {
            Value::Object(_) => Ok(reply.body),
            _ => self.get("referral", &id).await,
        }
    }

    async fn call(&self, operation: &str, inputs: &Value) -> Result<Value, ConnectorError> {
        match operation {
            "list_referrals" => {
                let text = |n: &[&str]| input_text(inputs, n);
                let filter = match (
                    text(&["filter", "$filter"]),
                    Self::filter(&pairs(inputs.get("where")))?,
                ) {
                    (Some(a), Some(b)) => Some(format!("({a}) and {b}")),
                    (a, b) => a.or(b),
                };
                let q = ListQuery {
                    filter,
                    orderby: text(&["orderby", "$orderby"]),
                    top: text(&["top", "$top"]).and_then(|t| t.parse().ok()),
                    select: text(&["select", "$select"]),
                };
                let limit = text(&["limit"]).and_then(|t| t.parse().ok());
                Ok(Value::Array(self.list("referral", &q, limit).await?))
            }
            "get_referral" => {
                self.get("referral", &self.referral_id(inputs, operation)?)
                    .await
            }
            "create_referral" => {
                self.create("referral", inputs.get("referral").unwrap_or(inputs))
                    .await
            }
            "update_referral" => {
                let id = self.referral_id(inputs, operation)?;
                let if_match = input_text(inputs, &["if_match", "eTag"]);
                match inputs.get("patch") {
                    Some(Value::Array(ops)) => {
                        self.patch("referral", &id, ops.clone(), if_match.as_deref())
                            .await
                    }
                    _ => {
                        let changes = inputs.get("changes").cloned().unwrap_or_else(|| json!({}));
                        self.update("referral", &id, &changes, if_match.as_deref())
                            .await
                    }
                }
            }
            "replace_referral" => self.replace(inputs).await,
            op if webhooks::OPERATIONS.contains(&op) => match &self.webhooks {
                Some(conn) => webhooks::call(conn, op, inputs).await,
                None => Err(invalid(format!(
                    "connection `{}` has no webhooks_url (the webhook registration API's base URL)",
                    self.referrals.name()
                ))),
            },
            op if self.extra.has(op) => {
                Ok(self.extra.run(&self.referrals, op, inputs, None).await?.0)
            }
            op => Err(invalid(format!("Partner Center has no operation `{op}`"))),
        }
    }

    async fn handle(&self, request: Request) -> Result<Value, ConnectorError> {
        match request {
            Request::Get { entity, key, .. } => self.get(&entity, &key).await,
            Request::Find {
                entity,
                where_fields,
                select,
                limit,
                ..
            } => self.find(&entity, &where_fields, &select, limit).await,
            Request::Create { entity, record, .. } => self.create(&entity, &record).await,
            Request::Update {
                entity,
                key,
                changes,
                if_match,
                ..
            } => {
                self.update(&entity, &key, &changes, if_match.as_deref())
                    .await
            }
            Request::Upsert {
                entity,
                match_fields,
                record,
                ..
            } => self.upsert(&entity, &match_fields, record).await,
            Request::Call {
                operation, inputs, ..
            } => self.call(&operation, &inputs).await,
        }
    }
}

impl Connector for PartnerCenter {
    fn execute<'a>(&'a self, request: Request) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        Box::pin(self.handle(request))
    }

    fn pull_metadata<'a>(
        &'a self,
        _entities: &'a [String],
    ) -> BoxFuture<'a, Result<Value, ConnectorError>> {
        Box::pin(async move {
            Err(invalid(
                "Partner Center publishes no metadata API; the referral's fields are those of specs/partner-center-referrals.swagger.json",
            ))
        })
    }
}
