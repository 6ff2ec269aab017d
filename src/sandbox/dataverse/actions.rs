//! Dataverse actions: `WinOpportunity` / `LoseOpportunity` (close an open opportunity
//! with a status reason and create its `opportunityclose` activity) and `WhoAmI`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::schema::{self, OPPORTUNITY_STATUSES};
use super::write::{create_row, etag_version};
use super::{
    API_USER_ID, BUSINESS_UNIT_ID, ORGANIZATION_ID, Request, SANDBOX_USER_ID, bad_request,
    body_error, error, parse_guid, row_not_found,
};
use crate::sandbox::body;
use crate::sandbox::error::ApiError;
use crate::sandbox::stamp;
use crate::sandbox::state::{Actor, Core, Sandbox, ns};

/// `WhoAmI`.
pub(super) fn who_am_i(_sandbox: &Sandbox) -> Response {
    Json(json!({
        "@odata.context": "$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
        "BusinessUnitId": BUSINESS_UNIT_ID,
        "UserId": API_USER_ID,
        "OrganizationId": ORGANIZATION_ID,
    }))
    .into_response()
}

/// `POST /WinOpportunity` or `/LoseOpportunity`.
pub(super) fn close(
    sandbox: &Sandbox,
    action: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    let input =
        body::json(&request.headers, &request.body, &["application/json"]).map_err(body_error)?;
    let win = action == "WinOpportunity";
    let status = input.get("Status").and_then(Value::as_i64).ok_or_else(|| {
        bad_request(format!(
            "{action}: the parameter 'Status' (the status reason to close with) is required."
        ))
    })?;
    let state = if win { 1 } else { 2 };
    let status = match status {
        -1 => OPPORTUNITY_STATUSES
            .iter()
            .find(|(_, s, _)| *s == state)
            .map_or(3, |(v, _, _)| *v),
        n if OPPORTUNITY_STATUSES
            .iter()
            .any(|(v, s, _)| *v == n && *s == state) =>
        {
            n
        }
        n => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "0x80040203",
                format!(
                    "{n} is not a valid status code for state code OpportunityState.{} on opportunity.",
                    if win { "Won" } else { "Lost" }
                ),
            ));
        }
    };
    let close = input
        .get("OpportunityClose")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            bad_request(format!(
                "{action}: the parameter 'OpportunityClose' is required."
            ))
        })?;
    let bind = close
        .get("opportunityid@odata.bind")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("OpportunityClose must bind the opportunity: \"opportunityid@odata.bind\": \"/opportunities(<id>)\"."))?;
    let id = bind
        .rsplit('/')
        .next()
        .and_then(|s| s.strip_prefix("opportunities("))
        .and_then(|s| s.strip_suffix(')'))
        .and_then(parse_guid)
        .ok_or_else(|| bad_request(format!("'{bind}' is not a valid opportunity reference.")))?;
    let if_match = body::header_text(&request.headers, "if-match").map(str::to_owned);
    let actor = request.actor;
    let close = close.clone();
    sandbox.with_core(|core| {
        close_opportunity(core, &id, state, status, &close, if_match.as_deref(), actor)
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn close_opportunity(
    core: &mut Core,
    id: &str,
    state: i64,
    status: i64,
    close: &serde_json::Map<String, Value>,
    if_match: Option<&str>,
    actor: Actor,
) -> Result<(), ApiError> {
    let Some(entity) = schema::by_logical("opportunity") else {
        return Err(row_not_found("opportunity", id));
    };
    let mut row = core
        .dataverse
        .get("opportunity")
        .and_then(|rows| rows.get(id))
        .cloned()
        .ok_or_else(|| row_not_found("opportunity", id))?;
    if let Some(tag) = if_match
        && tag != "*"
        && etag_version(tag) != Some(row.version)
    {
        return Err(error(
            StatusCode::PRECONDITION_FAILED,
            "0x80060882",
            "The version of the existing record doesn't match the RowVersion property provided.",
        ));
    }
    if row
        .attributes
        .get("statecode")
        .and_then(Value::as_i64)
        .is_some_and(|s| s != 0)
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "0x80040203",
            "The opportunity is already closed. Reopen it before closing it again.",
        ));
    }
    let revenue = close
        .get("actualrevenue")
        .cloned()
        .or_else(|| row.attributes.get("estimatedvalue").cloned())
        .unwrap_or(Value::Null);
    let end = close
        .get("actualend")
        .and_then(Value::as_str)
        .and_then(stamp::parse)
        .unwrap_or_else(Utc::now)
        .format("%Y-%m-%d")
        .to_string();
    let mut activity = json!({
        "subject": close.get("subject").cloned().unwrap_or(json!(if state == 1 { "Opportunity won" } else { "Opportunity lost" })),
        "opportunityid@odata.bind": format!("/opportunities({id})"),
        "actualend": end,
        "actualrevenue": revenue,
        "statecode": 1,
        "statuscode": 2,
    });
    if let Some(description) = close.get("description") {
        activity["description"] = description.clone();
    }
    if let Some(entity_close) = schema::by_logical("opportunityclose") {
        create_row(core, entity_close, None, &activity, actor)?;
    }
    let attributes = &mut row.attributes;
    attributes.insert("statecode".into(), json!(state));
    attributes.insert("statuscode".into(), json!(status));
    attributes.insert("actualclosedate".into(), json!(end));
    attributes.insert("actualvalue".into(), revenue);
    attributes.insert(
        "closeprobability".into(),
        json!(if state == 1 { 100 } else { 0 }),
    );
    row.version = core.next_dataverse_version();
    let user = if actor == Actor::Api {
        API_USER_ID
    } else {
        SANDBOX_USER_ID
    };
    row.attributes
        .insert("modifiedon".into(), json!(stamp::dataverse(Utc::now())));
    row.attributes.insert(
        "modifiedby".into(),
        json!({"id": user, "entity": "systemuser"}),
    );
    row.attributes
        .insert("versionnumber".into(), json!(row.version));
    if core.persistent() {
        core.persist(&ns::dataverse(entity.logical), id, &row);
    }
    core.dataverse
        .entry(entity.logical.to_owned())
        .or_default()
        .insert(id.to_owned(), row);
    Ok(())
}
