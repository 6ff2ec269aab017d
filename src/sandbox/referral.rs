//! Referral rules: creation with server-assigned fields, full replacement (PUT) and
//! JSON-Patch updates, the status/substatus transition table (domain.md §1.5, Closed is
//! terminal), the co-sell requirements, eTags, and the response form (`links`).

use axum::http::StatusCode;
use chrono::Duration;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use super::SandboxUrls;
use super::error::{ApiError, Service};
use super::referral_shape::{REFERRAL, SERVER_MANAGED, Shape};
use super::stamp;
pub(crate) use super::state::Actor;
use super::state::{Core, ns};

/// The partner organization that owns referrals created through the API.
pub const PARTNER_ORGANIZATION_ID: &str = "5a4d0002-c05e-4c0a-8d1e-5a4db0c05e01";
/// Its display name.
pub const PARTNER_ORGANIZATION_NAME: &str = "Contoso (cosync sandbox partner)";

/// A successful write: the stored referral and the webhook event it raises.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) referral: Value,
    /// `referral-created`, `referral-updated`, `related-…`; `None` when nothing changed.
    pub(crate) event: Option<&'static str>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        Service::PartnerCenter,
        StatusCode::BAD_REQUEST,
        "invalidRequest",
        message,
    )
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        Service::PartnerCenter,
        StatusCode::NOT_FOUND,
        "itemNotFound",
        format!("Referral with id '{id}' was not found."),
    )
}

fn text<'a>(referral: &'a Value, pointer: &str) -> Option<&'a str> {
    referral.pointer(pointer).and_then(Value::as_str)
}

/// Allowed substatus values per status.
fn substatuses(status: &str) -> &'static [&'static str] {
    match status {
        "New" => &["Pending", "Received"],
        "Active" => &["Accepted"],
        "Closed" => &["Won", "Lost", "Declined", "Expired"],
        _ => &[],
    }
}

/// Checks the status pair and, for an update, the transition from `old`.
fn check_status(old: Option<&Value>, new: &Value) -> Result<(), ApiError> {
    let status = text(new, "/status").unwrap_or("");
    let substatus = text(new, "/substatus").unwrap_or("");
    let allowed = substatuses(status);
    if allowed.is_empty() {
        return Err(invalid(format!(
            "Status '{status}' is not valid; use New, Active or Closed."
        )));
    }
    if !allowed.contains(&substatus) {
        return Err(invalid(format!(
            "Substatus '{substatus}' is not valid for status '{status}'. Valid substatus values: {}.",
            allowed.join(", ")
        )));
    }
    let Some(old) = old else { return Ok(()) };
    let from = text(old, "/status").unwrap_or("");
    let allowed_next: &[&str] = match from {
        "New" => &["New", "Active", "Closed"],
        "Active" => &["Active", "Closed"],
        "Closed" => &["Closed"],
        _ => &["New", "Active", "Closed"],
    };
    if !allowed_next.contains(&status) {
        return Err(invalid(format!(
            "A referral cannot move from status '{from}' to '{status}'."
        )));
    }
    Ok(())
}

/// The co-sell requirements Partner Center enforces.
fn check_cosell(old: Option<&Value>, new: &Value) -> Result<(), ApiError> {
    if text(new, "/name").is_none_or(|n| n.trim().is_empty()) {
        return Err(invalid("The referral name is required."));
    }
    let visible = |r: &Value| {
        r.pointer("/consent/consentToShareReferralWithMicrosoftSellers")
            .and_then(Value::as_bool)
            == Some(true)
    };
    if old.is_some_and(visible) && !visible(new) {
        return Err(invalid(
            "A referral shared with Microsoft sellers cannot be made private again.",
        ));
    }
    if let Some(country) = text(new, "/customerProfile/address/country")
        && (country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()))
    {
        return Err(invalid(format!(
            "Customer country '{country}' must be an ISO 3166 two-letter code."
        )));
    }
    let help = text(new, "/inviteContext/assistanceRequestCode").is_some_and(|c| c != "Unknown");
    if text(new, "/status") == Some("Closed") {
        return Ok(());
    }
    if help
        && new
            .pointer("/customerProfile/team")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    {
        return Err(invalid(
            "A customer contact (customerProfile.team) is required when help is requested from Microsoft.",
        ));
    }
    let solutions = new
        .pointer("/details/requirements/solutions")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    if (help || visible(new)) && !solutions {
        return Err(invalid(
            "Solution ID is required: a referral shared with Microsoft needs at least one solution in details.requirements.solutions.",
        ));
    }
    Ok(())
}

fn next_etag(core: &mut Core) -> String {
    core.counters.partner_center_etag += 1;
    core.persist_counters();
    let seconds = chrono::Utc::now().timestamp();
    format!(
        "\"{:08x}-0000-0000-0000-{:012x}\"",
        core.counters.partner_center_etag, seconds
    )
}

/// Compares an `If-Match` value with an eTag (quotes and `W/` are tolerated; `*` matches).
pub(crate) fn etag_matches(if_match: &str, etag: &str) -> bool {
    let strip = |s: &str| {
        s.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .trim_matches('\\')
            .trim_matches('"')
            .to_owned()
    };
    if_match.trim() == "*" || strip(if_match) == strip(etag)
}

fn event_for(referral: &Value, created: bool) -> &'static str {
    let related = text(referral, "/organizationId").is_some_and(|o| o != PARTNER_ORGANIZATION_ID);
    match (related, created) {
        (false, true) => "referral-created",
        (false, false) => "referral-updated",
        (true, true) => "related-referral-created",
        (true, false) => "related-referral-updated",
    }
}

fn bind(body: &Value, lenient: bool) -> Result<Map<String, Value>, ApiError> {
    if !body.is_object() {
        return Err(invalid("The request body must be a referral object."));
    }
    match REFERRAL.bind_as(body, "", lenient).map_err(invalid)? {
        Some(Value::Object(map)) => Ok(map),
        _ => Ok(Map::new()),
    }
}

/// Creates a referral.
pub(crate) fn create(core: &mut Core, body: &Value, actor: Actor) -> Result<Written, ApiError> {
    let mut input = bind(body, core.seeding)?;
    let now = core.stamps.next_partner_center();
    let stamp_now = stamp::partner_center(now);
    let mut referral = Map::new();
    let keep = |key: &str| {
        actor == Actor::User
            && !matches!(
                key,
                "id" | "eTag" | "links" | "@odata.context" | "createdDateTime" | "updatedDateTime"
            )
    };
    let take = |input: &mut Map<String, Value>, key: &str, default: Value| match input.remove(key) {
        Some(v) if key == "engagementId" || keep(key) => v,
        _ => default,
    };
    let id = uuid::Uuid::new_v4().to_string();
    referral.insert("id".into(), json!(id));
    let engagement = take(
        &mut input,
        "engagementId",
        json!(uuid::Uuid::new_v4().to_string()),
    );
    referral.insert("engagementId".into(), engagement);
    let organization = take(&mut input, "organizationId", json!(PARTNER_ORGANIZATION_ID));
    referral.insert("organizationId".into(), organization);
    let organization_name = take(
        &mut input,
        "organizationName",
        json!(PARTNER_ORGANIZATION_NAME),
    );
    referral.insert("organizationName".into(), organization_name);
    let direction = if actor == Actor::Api {
        "Outgoing"
    } else {
        "Incoming"
    };
    let direction = take(&mut input, "direction", json!(direction));
    let (status, substatus) = initial_status(&mut input, actor)?;
    for key in SERVER_MANAGED {
        if !keep(key) {
            input.remove(*key);
        }
    }
    input.entry("type").or_insert(json!("Independent"));
    for (key, value) in input {
        referral.insert(key, value);
    }
    referral.insert("status".into(), json!(status));
    referral.insert("substatus".into(), json!(substatus));
    referral.insert("direction".into(), direction);
    referral.insert("createdDateTime".into(), json!(stamp_now));
    referral.insert("updatedDateTime".into(), json!(stamp_now));
    if status == "Active" {
        referral
            .entry("acceptedDateTime")
            .or_insert(json!(stamp_now));
    }
    if status == "New" {
        referral
            .entry("expirationDateTime")
            .or_insert(json!(stamp::partner_center(now + Duration::days(14))));
    }
    if status == "Closed" {
        referral.entry("closedDateTime").or_insert(json!(stamp_now));
    }
    referral.insert("eTag".into(), json!(next_etag(core)));
    let referral = Value::Object(referral);
    check_status(None, &referral)?;
    if !core.seeding {
        check_cosell(None, &referral)?;
    }
    core.persist(ns::REFERRAL, &id, &referral);
    core.referrals.insert(id, referral.clone());
    let event = event_for(&referral, true);
    Ok(Written {
        referral,
        event: Some(event),
    })
}

/// The status a new referral gets. Partner-created (outgoing) referrals sent as New
/// come back Active/Accepted, as the documented create example shows.
fn initial_status(
    input: &mut Map<String, Value>,
    actor: Actor,
) -> Result<(String, String), ApiError> {
    let status = input
        .remove("status")
        .and_then(|v| v.as_str().map(str::to_owned));
    let substatus = input
        .remove("substatus")
        .and_then(|v| v.as_str().map(str::to_owned));
    match (actor, status.as_deref()) {
        (Actor::Api, None | Some("New" | "Active")) => Ok(("Active".into(), "Accepted".into())),
        (Actor::Api, Some(other)) => Err(invalid(format!(
            "A referral cannot be created with status '{other}'."
        ))),
        (Actor::User, None) => Ok(("New".into(), substatus.unwrap_or_else(|| "Pending".into()))),
        (Actor::User, Some(status)) => {
            let default = substatuses(status).first().copied().unwrap_or("None");
            Ok((
                status.to_owned(),
                substatus.unwrap_or_else(|| default.to_owned()),
            ))
        }
    }
}

/// Applies a new version of a referral after the rules allow it.
fn commit(core: &mut Core, id: &str, mut new: Value, actor: Actor) -> Result<Written, ApiError> {
    // The stored referral is compared in place, not copied.
    let (accepted, closed) = {
        let old = core.referrals.get(id).ok_or_else(|| not_found(id))?;
        check_status(Some(old), &new)?;
        check_cosell(Some(old), &new)?;
        if new == *old {
            return Ok(Written {
                referral: new,
                event: None,
            });
        }
        if actor == Actor::Api && text(old, "/status") == Some("Closed") {
            return Err(invalid(
                "The referral is closed; a closed referral cannot be updated.",
            ));
        }
        let became = |status: &str| {
            text(&new, "/status") == Some(status) && text(old, "/status") != Some(status)
        };
        (became("Active"), became("Closed"))
    };
    let now = stamp::partner_center(core.stamps.next_partner_center());
    if let Some(map) = new.as_object_mut() {
        if accepted {
            map.insert("acceptedDateTime".into(), json!(now));
        }
        if closed {
            map.insert("closedDateTime".into(), json!(now));
        }
        map.insert("updatedDateTime".into(), json!(now));
    }
    let etag = next_etag(core);
    new["eTag"] = json!(etag);
    core.persist(ns::REFERRAL, id, &new);
    core.referrals.insert(id.to_owned(), new.clone());
    let event = event_for(&new, false);
    Ok(Written {
        referral: new,
        event: Some(event),
    })
}

fn check_if_match(old: &Value, if_match: Option<&str>, required: bool) -> Result<(), ApiError> {
    let etag = text(old, "/eTag").unwrap_or("");
    match if_match {
        None if required => Err(ApiError::new(
            Service::PartnerCenter,
            StatusCode::PRECONDITION_FAILED,
            "preconditionFailed",
            "The If-Match header is required; send the eTag of the referral you last read.",
        )),
        Some(value) if !etag_matches(value, etag) => Err(ApiError::new(
            Service::PartnerCenter,
            StatusCode::PRECONDITION_FAILED,
            "preconditionFailed",
            "The referral was modified since it was read: the If-Match eTag does not match.",
        )
        .with_inner("resourceModified", "eTag mismatch")),
        _ => Ok(()),
    }
}

/// Replaces a referral (PUT): If-Match required, `links` refused, server-managed
/// properties kept from the stored referral.
pub(crate) fn replace(
    core: &mut Core,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
) -> Result<Written, ApiError> {
    let old = core.referrals.get(id).ok_or_else(|| not_found(id))?;
    check_if_match(old, if_match, true)?;
    if body
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case("links")))
    {
        return Err(invalid(
            "The links object must not be sent: remove it from the referral before a PUT.",
        ));
    }
    let mut input = bind(body, false)?;
    if input
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|body_id| !body_id.eq_ignore_ascii_case(id))
    {
        return Err(invalid(
            "The id in the body does not match the id in the URL.",
        ));
    }
    let mut new = Map::new();
    for (key, value) in old.as_object().into_iter().flatten() {
        if SERVER_MANAGED.contains(&key.as_str()) {
            new.insert(key.clone(), value.clone());
        } else if let Some(v) = input.remove(key) {
            new.insert(key.clone(), v);
        }
    }
    for (key, value) in input {
        if !SERVER_MANAGED.contains(&key.as_str()) {
            new.insert(key, value);
        }
    }
    commit(core, id, Value::Object(new), Actor::Api)
}

/// Applies a JSON-Patch (`replace` and `add` only).
pub(crate) fn patch(
    core: &mut Core,
    id: &str,
    operations: &Value,
    if_match: Option<&str>,
    actor: Actor,
) -> Result<Written, ApiError> {
    let mut new = core
        .referrals
        .get(id)
        .cloned()
        .ok_or_else(|| not_found(id))?;
    check_if_match(&new, if_match, false)?;
    let Some(operations) = operations.as_array() else {
        return Err(invalid(
            "The request body must be a JSON-Patch document (an array of operations).",
        ));
    };
    for (index, operation) in operations.iter().enumerate() {
        apply(&mut new, operation, actor)
            .map_err(|e| invalid(format!("Operation {index}: {e}")))?;
    }
    commit(core, id, new, actor)
}

fn apply(document: &mut Value, operation: &Value, actor: Actor) -> Result<(), String> {
    let op = operation
        .get("op")
        .and_then(Value::as_str)
        .ok_or("'op' is required")?;
    let add = match op {
        "add" => true,
        "replace" => false,
        other => {
            return Err(format!(
                "the operation '{other}' is not supported; use 'replace' or 'add'"
            ));
        }
    };
    let path = operation
        .get("path")
        .and_then(Value::as_str)
        .ok_or("'path' is required")?;
    let value = operation.get("value").ok_or("'value' is required")?;
    let segments: Vec<String> = path
        .strip_prefix('/')
        .ok_or_else(|| format!("'{path}' is not a JSON pointer"))?
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let first = segments.first().map(String::as_str).unwrap_or("");
    if let Some((name, _)) = REFERRAL.field(first)
        && SERVER_MANAGED.contains(&name)
        && !(actor == Actor::User && name != "id" && name != "eTag")
    {
        return Err(format!("'{path}' is read-only"));
    }
    set(document, &REFERRAL, &segments, value, add, path)
}

fn set(
    node: &mut Value,
    shape: &Shape,
    segments: &[String],
    value: &Value,
    add: bool,
    path: &str,
) -> Result<(), String> {
    let Some((segment, rest)) = segments.split_first() else {
        return Err(format!("'{path}' does not name a property"));
    };
    match shape {
        Shape::Array(item) => {
            let items = node
                .as_array_mut()
                .ok_or_else(|| format!("'{path}' is not an array"))?;
            if rest.is_empty() {
                let bound = item.bind(value, path)?.unwrap_or(Value::Null);
                if segment == "-" && add {
                    items.push(bound);
                    return Ok(());
                }
                let index: usize = segment
                    .parse()
                    .map_err(|_| format!("'{segment}' is not an array index"))?;
                match (add, index <= items.len(), index < items.len()) {
                    (true, true, _) => items.insert(index, bound),
                    (false, _, true) => items[index] = bound,
                    _ => return Err(format!("index {index} is out of range in '{path}'")),
                }
                return Ok(());
            }
            let index: usize = segment
                .parse()
                .map_err(|_| format!("'{segment}' is not an array index"))?;
            let child = items
                .get_mut(index)
                .ok_or_else(|| format!("index {index} is out of range in '{path}'"))?;
            set(child, item, rest, value, add, path)
        }
        Shape::Object(_) => {
            let (name, child_shape) = shape.field(segment).ok_or_else(|| {
                format!("'{path}': the property '{segment}' does not exist on the referral")
            })?;
            if !node.is_object() {
                *node = json!({});
            }
            let map = node.as_object_mut().ok_or("not an object")?;
            if rest.is_empty() {
                match child_shape.bind(value, path)? {
                    Some(bound) => map.insert(name.to_owned(), bound),
                    None => map.remove(name),
                };
                return Ok(());
            }
            let child = map
                .entry(name.to_owned())
                .or_insert_with(|| match child_shape {
                    Shape::Array(_) => json!([]),
                    _ => json!({}),
                });
            set(child, child_shape, rest, value, add, path)
        }
        _ => Err(format!(
            "'{path}' goes below a value that has no properties"
        )),
    }
}

/// A referral as the API returns it: `@odata.context` (single reads), the stored
/// fields, `links`, then `eTag`.
pub(crate) fn render(referral: &Value, urls: &SandboxUrls, single: bool) -> Value {
    serde_json::to_value(Rendered {
        referral,
        urls,
        single,
    })
    .unwrap_or(Value::Null)
}

/// [`render`] serialized straight to JSON, reading the stored referral in place
/// (a read never copies it).
pub(crate) fn render_json(referral: &Value, urls: &SandboxUrls, single: bool) -> Vec<u8> {
    serde_json::to_vec(&Rendered {
        referral,
        urls,
        single,
    })
    .unwrap_or_default()
}

/// A stored referral, serialized as [`render`] describes.
struct Rendered<'a> {
    referral: &'a Value,
    urls: &'a SandboxUrls,
    single: bool,
}

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let base = &self.urls.partner_center;
        let id = text(self.referral, "/id").unwrap_or("");
        let engagement = text(self.referral, "/engagementId").unwrap_or("");
        let links = json!({
            "relatedReferrals": {
                "uri": format!("{base}/v1.0/engagements/referrals?$filter=engagementId eq '{engagement}'"),
                "method": "GET",
            },
            "self": {"uri": format!("{base}/v1.0/engagements/referrals/{id}"), "method": "GET"},
        });
        let mut map = serializer.serialize_map(None)?;
        if self.single {
            map.serialize_entry(
                "@odata.context",
                &format!("{base}/v1.0/engagements/$metadata#referrals/$entity"),
            )?;
        }
        let mut linked = false;
        for (key, value) in self.referral.as_object().into_iter().flatten() {
            match key.as_str() {
                "eTag" => {}
                // A stored `links` keeps its place and gets the served value.
                "links" => {
                    map.serialize_entry(key, &links)?;
                    linked = true;
                }
                _ => map.serialize_entry(key, value)?,
            }
        }
        if !linked {
            map.serialize_entry("links", &links)?;
        }
        if let Some(etag) = self.referral.get("eTag") {
            map.serialize_entry("eTag", etag)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::state::Settings;

    fn core() -> Core {
        Core::new(Settings::default(), false)
    }

    #[test]
    fn a_rendered_referral_has_its_context_fields_links_and_etag_in_order() {
        let urls = SandboxUrls {
            partner_center: "http://127.0.0.1:1".into(),
            partner_center_webhooks: String::new(),
            dataverse: String::new(),
            salesforce: String::new(),
            login: String::new(),
            admin: String::new(),
        };
        let stored = json!({"eTag": "\"7\"", "id": "r1", "engagementId": "e1", "name": "Deal"});
        let rendered = render(&stored, &urls, true);
        let keys: Vec<&str> = rendered
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "@odata.context",
                "id",
                "engagementId",
                "name",
                "links",
                "eTag"
            ]
        );
        assert_eq!(
            rendered["links"]["self"]["uri"],
            "http://127.0.0.1:1/v1.0/engagements/referrals/r1"
        );
        assert_eq!(
            rendered["links"]["relatedReferrals"]["uri"],
            "http://127.0.0.1:1/v1.0/engagements/referrals?$filter=engagementId eq 'e1'"
        );
        // The bytes served are the same document, and a list item has no context.
        let served: Value = serde_json::from_slice(&render_json(&stored, &urls, true))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(served, rendered);
        assert!(
            render(&stored, &urls, false)
                .get("@odata.context")
                .is_none()
        );
    }

    #[test]
    fn api_create_assigns_server_fields_and_accepts() {
        let mut core = core();
        let written = create(
            &mut core,
            &json!({"name": "Deal", "status": "New", "substatus": "Pending", "id": "mine"}),
            Actor::Api,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let r = written.referral;
        assert_ne!(r["id"], "mine");
        assert_eq!(
            (r["status"].as_str(), r["substatus"].as_str()),
            (Some("Active"), Some("Accepted"))
        );
        assert!(
            r["eTag"]
                .as_str()
                .is_some_and(|e| e.starts_with('"') && e.ends_with('"'))
        );
        assert_eq!(written.event, Some("referral-created"));
    }

    #[test]
    fn transitions_follow_the_table() {
        let mut core = core();
        let created = create(&mut core, &json!({"name": "Lead"}), Actor::User)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let id = created.referral["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let to = |core: &mut Core, status: &str, substatus: &str| {
            patch(
                core,
                &id,
                &json!([{"op":"replace","path":"/status","value":status},{"op":"replace","path":"/substatus","value":substatus}]),
                None,
                Actor::Api,
            )
        };
        assert!(to(&mut core, "Active", "Pending").is_err());
        assert!(to(&mut core, "Active", "Accepted").is_ok());
        assert!(to(&mut core, "New", "Pending").is_err());
        assert!(to(&mut core, "Closed", "Won").is_ok());
        assert!(to(&mut core, "Closed", "Lost").is_err());
    }

    #[test]
    fn etags_compare_with_or_without_quotes() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("abc", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_patches_never_panic_and_keep_the_referral_valid(
            ops in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["add", "replace", "remove", "copy", ""]),
                    proptest::collection::vec(
                        proptest::sample::select(vec!["details", "dealValue", "team", "-", "0", "7", "status", "name", "customerProfile", "address", "country", "x~1y", ""]),
                        0..4,
                    ),
                    proptest::sample::select(vec![json!(null), json!(1), json!("Active"), json!({}), json!([]), json!({"email": "e"})]),
                ),
                0..5,
            )
        ) {
            let mut core = core();
            let created = create(&mut core, &json!({"name": "P"}), Actor::User).unwrap_or_else(|e| panic!("{e:?}"));
            let id = created.referral["id"].as_str().unwrap_or_default().to_owned();
            let operations: Vec<Value> = ops
                .into_iter()
                .map(|(op, path, value)| json!({"op": op, "path": format!("/{}", path.join("/")), "value": value}))
                .collect();
            let before = core.referrals.get(&id).cloned();
            match patch(&mut core, &id, &json!(operations), None, Actor::Api) {
                Ok(written) => proptest::prop_assert!(written.referral["name"].is_string()),
                Err(_) => proptest::prop_assert_eq!(core.referrals.get(&id).cloned(), before),
            }
        }
    }
}
