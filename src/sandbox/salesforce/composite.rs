//! sObject collections (`/composite/sobjects`): create (POST), update (PATCH), upsert by
//! external id (PATCH `/{Obj}/{Field}`), delete (DELETE `?ids=`) and retrieve (GET
//! `/{Obj}?ids=&fields=`) of up to 200 records, with `allOrNone` rollback.

use axum::Json;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::record::{self, bad};
use super::schema::{self, Field, SObject};
use super::{Request, body_error, fields_param};
use crate::sandbox::body;
use crate::sandbox::error::ApiError;
use crate::sandbox::state::{Actor, Core, Sandbox};

const MAX_RECORDS: usize = 200;

type Outcome = Result<(String, Option<bool>), ApiError>;

fn item(outcome: &Outcome, upsert: bool) -> Value {
    match outcome {
        Ok((id, created)) => {
            let mut out = json!({"id": id, "success": true, "errors": []});
            if upsert {
                out["created"] = json!(created.unwrap_or(false));
            }
            out
        }
        Err(e) => json!({
            "success": false,
            "errors": [{"statusCode": e.code, "message": e.message, "fields": e.fields}],
        }),
    }
}

fn rolled_back() -> Value {
    json!({
        "id": null,
        "success": false,
        "errors": [{
            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
            "fields": [],
        }],
    })
}

fn record_type(
    record: &Value,
    fixed: Option<&'static SObject>,
) -> Result<&'static SObject, ApiError> {
    let named = record.pointer("/attributes/type").and_then(Value::as_str);
    match (fixed, named) {
        (Some(sobject), None) => Ok(sobject),
        (Some(sobject), Some(name)) if sobject.name.eq_ignore_ascii_case(name) => Ok(sobject),
        (None, Some(name)) => schema::by_name(name).ok_or_else(|| {
            bad(
                "INVALID_TYPE",
                format!("sObject type '{name}' is not supported."),
                &[],
            )
        }),
        _ => Err(bad(
            "INVALID_TYPE",
            "Must specify a type in the attributes of each record",
            &[],
        )),
    }
}

fn upsert_one(core: &mut Core, sobject: &SObject, field: &Field, record: &Value) -> Outcome {
    let value = record
        .as_object()
        .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(field.name)))
        .and_then(|(_, v)| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_f64().map(|n| n.to_string()))
        })
        .ok_or_else(|| {
            bad(
                "MISSING_ARGUMENT",
                format!("{} not specified", field.name),
                &[field.name],
            )
        })?;
    let mut body = record.clone();
    if let Some(map) = body.as_object_mut() {
        map.retain(|k, _| !k.eq_ignore_ascii_case(field.name));
    }
    let matches = record::find_by(core, sobject, field, &value);
    match matches.as_slice() {
        [] => record::create(
            core,
            sobject,
            &body,
            Some((field, json!(value))),
            Actor::Api,
        )
        .map(|id| (id, Some(true))),
        [id] => record::update(core, sobject, id, &body, Actor::Api).map(|id| (id, Some(false))),
        _ => Err(bad(
            "DUPLICATE_EXTERNAL_ID",
            format!(
                "Foreign key external ID: {value} matched {} rows",
                matches.len()
            ),
            &[field.name],
        )),
    }
}

/// Handles `/composite/sobjects[/{Obj}[/{Field}]]`.
pub(super) fn collection(
    sandbox: &Sandbox,
    version: &str,
    path: &[String],
    request: &Request,
) -> Result<Response, ApiError> {
    let sobject = path
        .first()
        .map(|name| schema::by_name(name).ok_or_else(record::not_found))
        .transpose()?;
    let upsert_field = match (sobject, path.get(1)) {
        (Some(sobject), Some(name)) => Some(
            sobject
                .field(name)
                .filter(|f| f.external_id)
                .ok_or_else(|| {
                    bad(
                        "INVALID_FIELD",
                        format!(
                            "Field {name} is not an external id field of {}",
                            sobject.name
                        ),
                        &[],
                    )
                })?,
        ),
        _ => None,
    };
    match (&request.method, sobject, upsert_field) {
        (&Method::GET, Some(sobject), None) => retrieve(sandbox, version, sobject, request),
        (&Method::DELETE, None, None) => delete(sandbox, request),
        (&Method::POST, None, None)
        | (&Method::PATCH, None, None)
        | (&Method::PATCH, Some(_), Some(_)) => write(sandbox, request, sobject, upsert_field),
        _ => Err(record::not_found()),
    }
}

fn write(
    sandbox: &Sandbox,
    request: &Request,
    fixed: Option<&'static SObject>,
    upsert: Option<&'static Field>,
) -> Result<Response, ApiError> {
    let input =
        body::json(&request.headers, &request.body, &["application/json"]).map_err(body_error)?;
    let all_or_none = input
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let records = input
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad(
                "INVALID_FIELD",
                "The request must have a records array",
                &[],
            )
        })?;
    if records.len() > MAX_RECORDS {
        return Err(bad(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
            &[],
        ));
    }
    let creating = request.method == Method::POST;
    let results = sandbox.with_core(|core| {
        let snapshot = (
            core.salesforce.clone(),
            core.counters.clone(),
            core.pending_mark(),
        );
        let outcomes: Vec<Outcome> = records
            .iter()
            .map(|record| {
                let sobject = record_type(record, fixed)?;
                match upsert {
                    Some(field) => upsert_one(core, sobject, field, record),
                    None if creating => {
                        record::create(core, sobject, record, None, Actor::Api).map(|id| (id, None))
                    }
                    None => {
                        let id = record
                            .get("id")
                            .or_else(|| record.get("Id"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                bad(
                                    "MISSING_ARGUMENT",
                                    "Id not specified in an update call",
                                    &[],
                                )
                            })?
                            .to_owned();
                        record::update(core, sobject, &id, record, Actor::Api).map(|id| (id, None))
                    }
                }
            })
            .collect();
        let failed = outcomes.iter().any(Result::is_err);
        if all_or_none && failed {
            core.salesforce = snapshot.0;
            core.counters = snapshot.1;
            core.rollback_pending(snapshot.2);
            return outcomes
                .iter()
                .map(|o| {
                    if o.is_ok() {
                        rolled_back()
                    } else {
                        item(o, upsert.is_some())
                    }
                })
                .collect::<Vec<_>>();
        }
        outcomes.iter().map(|o| item(o, upsert.is_some())).collect()
    });
    Ok(Json(Value::Array(results)).into_response())
}

fn delete(sandbox: &Sandbox, request: &Request) -> Result<Response, ApiError> {
    let pairs = body::query_pairs(request.uri.query());
    let ids: Vec<String> = body::query_value(&pairs, "ids")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if ids.len() > MAX_RECORDS {
        return Err(bad(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
            &[],
        ));
    }
    let all_or_none = body::query_value(&pairs, "allOrNone") == Some("true");
    let results = sandbox.with_core(|core| {
        let snapshot = (core.salesforce.clone(), core.pending_mark());
        let outcomes: Vec<Outcome> = ids
            .iter()
            .map(|id| {
                let sobject = schema::by_prefix(id)
                    .ok_or_else(|| bad("MALFORMED_ID", format!("malformed id {id}"), &[]))?;
                record::delete(core, sobject, id).map(|()| (id.clone(), None))
            })
            .collect();
        if all_or_none && outcomes.iter().any(Result::is_err) {
            core.salesforce = snapshot.0;
            core.rollback_pending(snapshot.1);
            return outcomes
                .iter()
                .map(|o| {
                    if o.is_ok() {
                        rolled_back()
                    } else {
                        item(o, false)
                    }
                })
                .collect::<Vec<_>>();
        }
        outcomes.iter().map(|o| item(o, false)).collect()
    });
    Ok(Json(Value::Array(results)).into_response())
}

fn retrieve(
    sandbox: &Sandbox,
    version: &str,
    sobject: &'static SObject,
    request: &Request,
) -> Result<Response, ApiError> {
    let pairs = body::query_pairs(request.uri.query());
    let fields = fields_param(sobject, &pairs)?;
    let ids: Vec<String> = body::query_value(&pairs, "ids")
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default();
    let records = sandbox.with_core(|core| {
        ids.iter()
            .map(|id| {
                record::lookup(core, sobject.name, id).map_or(Value::Null, |(_, r)| {
                    record::render(sobject, r, fields.as_deref(), version)
                })
            })
            .collect::<Vec<_>>()
    });
    Ok(Json(Value::Array(records)).into_response())
}
