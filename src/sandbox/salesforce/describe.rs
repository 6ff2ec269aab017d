//! Salesforce metadata and org resources: API versions, the resource list, the global
//! sObject list, `describe` (fields with types, lengths, picklist values, references,
//! external ids), and `limits` (the daily API allocation).

use serde_json::{Value, json};

use super::schema::{self, Field, SObject, Type};

fn urls(version: &str, name: &str) -> Value {
    let base = format!("/services/data/{version}/sobjects/{name}");
    json!({
        "sobject": base,
        "describe": format!("{base}/describe"),
        "rowTemplate": format!("{base}/{{ID}}"),
    })
}

/// `GET /services/data`.
pub(super) fn versions() -> Value {
    json!([
        {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"},
        {"label": "Spring '24", "url": "/services/data/v60.0", "version": "60.0"},
        {"label": "Summer '24", "url": "/services/data/v61.0", "version": "61.0"},
        {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"},
    ])
}

/// `GET /services/data/vXX.X`.
pub(super) fn resources(version: &str) -> Value {
    let base = format!("/services/data/{version}");
    json!({
        "sobjects": format!("{base}/sobjects"),
        "query": format!("{base}/query"),
        "queryAll": format!("{base}/queryAll"),
        "composite": format!("{base}/composite"),
        "limits": format!("{base}/limits"),
    })
}

fn summary(version: &str, sobject: &SObject) -> Value {
    json!({
        "name": sobject.name,
        "label": sobject.label,
        "labelPlural": sobject.plural,
        "keyPrefix": sobject.prefix,
        "custom": false,
        "createable": true,
        "updateable": true,
        "deletable": true,
        "queryable": true,
        "searchable": true,
        "urls": urls(version, sobject.name),
    })
}

/// `GET /sobjects`.
pub(super) fn global(version: &str) -> Value {
    let sobjects: Vec<Value> = schema::SOBJECTS
        .iter()
        .map(|s| summary(version, s))
        .collect();
    json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})
}

/// `GET /sobjects/{Obj}`.
pub(super) fn basic(version: &str, sobject: &SObject) -> Value {
    json!({"objectDescribe": summary(version, sobject), "recentItems": []})
}

fn field(field: &Field) -> Value {
    let (kind, soap) = field.kind.describe();
    let picklist: Vec<Value> = match field.kind {
        Type::Picklist(values, _) => values
            .iter()
            .map(|v| json!({"active": true, "defaultValue": false, "label": v, "validFor": null, "value": v}))
            .collect(),
        _ => Vec::new(),
    };
    let (reference_to, relationship) = match field.kind {
        Type::Reference(targets, relationship) => (json!(targets), json!(relationship)),
        _ => (json!([]), Value::Null),
    };
    let (precision, scale) = match field.kind {
        Type::Currency => (18, 2),
        Type::Percent => (3, 0),
        _ => (0, 0),
    };
    let long_text = matches!(field.kind, Type::TextArea(n) if n > 255);
    json!({
        "name": field.name,
        "label": field.label,
        "type": kind,
        "soapType": soap,
        "length": field.kind.length().unwrap_or(0),
        "precision": precision,
        "scale": scale,
        "digits": if field.kind == Type::Int { 9 } else { 0 },
        "nillable": !field.required && field.kind != Type::Boolean && field.name != "Id",
        "createable": field.createable,
        "updateable": field.updateable,
        "defaultedOnCreate": !field.createable || field.kind == Type::Boolean || matches!(field.name, "OwnerId" | "CurrencyIsoCode"),
        "externalId": field.external_id,
        "idLookup": field.external_id || field.name == "Id",
        "unique": false,
        "custom": field.name.ends_with("__c"),
        "calculated": false,
        "filterable": !long_text,
        "sortable": !long_text,
        "groupable": !long_text,
        "restrictedPicklist": matches!(field.kind, Type::Picklist(_, true)),
        "picklistValues": picklist,
        "referenceTo": reference_to,
        "relationshipName": relationship,
        "defaultValue": if field.kind == Type::Boolean { json!(false) } else { Value::Null },
    })
}

/// `GET /sobjects/{Obj}/describe`.
pub(super) fn describe(version: &str, sobject: &SObject) -> Value {
    let mut out = summary(version, sobject);
    let fields: Vec<Value> = sobject.fields.iter().map(field).collect();
    out["fields"] = json!(fields);
    out["childRelationships"] = json!([]);
    out["recordTypeInfos"] = json!([]);
    out
}

/// `GET /limits`.
pub(super) fn limits(used: u64, limit: u64) -> Value {
    json!({
        "DailyApiRequests": {"Max": limit, "Remaining": limit.saturating_sub(used)},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DataStorageMB": {"Max": 5, "Remaining": 5},
    })
}
