//! `EntityDefinitions` metadata, as `cosync metadata pull` reads it:
//! `EntityDefinitions(LogicalName='opportunity')?$expand=Attributes` (attribute names,
//! types, lengths, lookup targets, option sets inline), the attribute list and its type
//! casts (`/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`), and the list of
//! tables.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::schema::{self, Attribute, Entity, Kind, Level};
use super::{Request, bad_request, error};
use crate::sandbox::body;
use crate::sandbox::error::ApiError;
use crate::sandbox::odata;
use crate::sandbox::state::Sandbox;

fn label(text: &str) -> Value {
    let localized = json!({"Label": text, "LanguageCode": 1033});
    json!({"LocalizedLabels": [localized.clone()], "UserLocalizedLabel": localized})
}

/// A stable GUID for a metadata item.
fn metadata_id(name: &str) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in name.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    uuid::Uuid::from_u128(hash).to_string()
}

fn schema_name(logical: &str) -> String {
    let mut chars = logical.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

fn options(values: impl Iterator<Item = (i64, &'static str, Option<i64>)>) -> Value {
    let options: Vec<Value> = values
        .map(|(value, text, state)| {
            let mut option = json!({"Value": value, "Label": label(text)});
            if let Some(state) = state {
                option["State"] = json!(state);
            }
            option
        })
        .collect();
    json!({"Options": options})
}

fn attribute_metadata(entity: &Entity, attribute: &Attribute) -> Value {
    let (odata_type, kind) = match attribute.kind {
        Kind::Key => ("UniqueIdentifier", "Uniqueidentifier"),
        Kind::Text(_) => ("String", "String"),
        Kind::Memo(_) => ("Memo", "Memo"),
        Kind::Money => ("Money", "Money"),
        Kind::Decimal => ("Decimal", "Decimal"),
        Kind::Integer => ("Integer", "Integer"),
        Kind::BigInt => ("BigInt", "BigInt"),
        Kind::Boolean => ("Boolean", "Boolean"),
        Kind::DateOnly | Kind::DateTime => ("DateTime", "DateTime"),
        Kind::Picklist(_) => ("Picklist", "Picklist"),
        Kind::State(_) => ("State", "State"),
        Kind::Status(_) => ("Status", "Status"),
        Kind::Lookup(_) if attribute.name == "ownerid" => ("Lookup", "Owner"),
        Kind::Lookup(_) => ("Lookup", "Lookup"),
        Kind::Customer => ("Lookup", "Customer"),
    };
    let level = match attribute.level {
        Level::None => "None",
        Level::Application => "ApplicationRequired",
        Level::System => "SystemRequired",
    };
    let mut out = json!({
        "@odata.type": format!("#Microsoft.Dynamics.CRM.{odata_type}AttributeMetadata"),
        "MetadataId": metadata_id(&format!("{}.{}", entity.logical, attribute.name)),
        "LogicalName": attribute.name,
        "SchemaName": schema_name(attribute.name),
        "EntityLogicalName": entity.logical,
        "AttributeType": kind,
        "AttributeTypeName": {"Value": format!("{kind}Type")},
        "DisplayName": label(attribute.label),
        "RequiredLevel": {"Value": level, "CanBeChanged": attribute.level != Level::System, "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"},
        "IsCustomAttribute": attribute.name.starts_with("cosell_"),
        "IsPrimaryId": attribute.kind == Kind::Key,
        "IsPrimaryName": attribute.name == entity.primary_name,
        "IsValidForCreate": attribute.writable,
        "IsValidForUpdate": attribute.writable && attribute.kind != Kind::Key,
        "IsValidForRead": true,
    });
    match attribute.kind {
        Kind::Text(max) | Kind::Memo(max) => {
            out["MaxLength"] = json!(max);
            out["Format"] = json!("Text");
        }
        Kind::Money => {
            out["Precision"] = json!(2);
            out["MinValue"] = json!(-922_337_203_685_477.0);
            out["MaxValue"] = json!(922_337_203_685_477.0);
        }
        Kind::Decimal => out["Precision"] = json!(10),
        Kind::Integer => {
            out["MinValue"] = json!(i32::MIN);
            out["MaxValue"] = json!(i32::MAX);
        }
        Kind::DateOnly => {
            out["Format"] = json!("DateOnly");
            out["DateTimeBehavior"] = json!({"Value": "DateOnly"});
        }
        Kind::DateTime => {
            out["Format"] = json!("DateAndTime");
            out["DateTimeBehavior"] = json!({"Value": "UserLocal"});
        }
        Kind::Boolean => {
            let (no, yes) = if attribute.name == "isrevenuesystemcalculated" {
                ("User Provided", "System Calculated")
            } else {
                ("No", "Yes")
            };
            out["OptionSet"] = json!({
                "TrueOption": {"Value": 1, "Label": label(yes)},
                "FalseOption": {"Value": 0, "Label": label(no)},
            });
        }
        Kind::Picklist(values) | Kind::State(values) => {
            out["OptionSet"] = options(values.iter().map(|(v, l)| (*v, *l, None)));
        }
        Kind::Status(values) => {
            out["OptionSet"] = options(values.iter().map(|(v, s, l)| (*v, *l, Some(*s))));
        }
        Kind::Lookup(targets) => out["Targets"] = json!(targets),
        Kind::Customer => out["Targets"] = json!(["account", "contact"]),
        Kind::Key | Kind::BigInt => {}
    }
    out
}

fn entity_metadata(entity: &Entity) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("MetadataId".into(), json!(metadata_id(entity.logical)));
    out.insert("LogicalName".into(), json!(entity.logical));
    out.insert("SchemaName".into(), json!(schema_name(entity.logical)));
    out.insert("EntitySetName".into(), json!(entity.set));
    out.insert("ObjectTypeCode".into(), json!(entity.object_type_code));
    out.insert("PrimaryIdAttribute".into(), json!(entity.key));
    out.insert("PrimaryNameAttribute".into(), json!(entity.primary_name));
    out.insert("DisplayName".into(), label(entity.label));
    out.insert("IsCustomEntity".into(), json!(false));
    out.insert("ChangeTrackingEnabled".into(), json!(true));
    out
}

fn select(map: Map<String, Value>, fields: Option<&[String]>) -> Map<String, Value> {
    match fields {
        None => map,
        Some(fields) => map
            .into_iter()
            .filter(|(k, _)| k.starts_with('@') || k == "MetadataId" || fields.contains(k))
            .collect(),
    }
}

fn logical_name(segment: &str) -> Option<&str> {
    segment
        .strip_prefix("EntityDefinitions(")?
        .strip_suffix(')')?
        .strip_prefix("LogicalName=")?
        .strip_prefix('\'')?
        .strip_suffix('\'')
}

/// `GET /EntityDefinitions…`.
pub(super) fn definitions(
    sandbox: &Sandbox,
    segments: &[String],
    request: &Request,
) -> Result<Response, ApiError> {
    let pairs = body::query_pairs(request.uri.query());
    let base = format!("{}/api/data/v9.2", sandbox.urls().dataverse);
    let fields = body::query_value(&pairs, "$select").map(odata::parse_select);
    let first = segments.first().map(String::as_str).unwrap_or("");
    if first == "EntityDefinitions" {
        let filter = body::query_value(&pairs, "$filter")
            .map(|f| {
                odata::parse_filter(f).map_err(|e| bad_request(format!("Invalid $filter: {e}")))
            })
            .transpose()?;
        let value: Vec<Value> = schema::ENTITIES
            .iter()
            .map(|e| Value::Object(entity_metadata(e)))
            .filter(|e| filter.as_ref().is_none_or(|f| f.matches(e, true)))
            .map(|e| match e {
                Value::Object(map) => Value::Object(select(map, fields.as_deref())),
                other => other,
            })
            .collect();
        return Ok(Json(json!({"@odata.context": format!("{base}/$metadata#EntityDefinitions"), "value": value})).into_response());
    }
    let name = logical_name(first)
        .ok_or_else(|| bad_request(format!("Bad Request - Error in query syntax: '{first}'.")))?;
    let entity = schema::by_logical(name).ok_or_else(|| {
        error(
            axum::http::StatusCode::NOT_FOUND,
            "0x80040217",
            format!("Could not find an entity with name {name}"),
        )
    })?;
    let attributes = || {
        entity
            .attributes
            .iter()
            .map(|a| attribute_metadata(entity, a))
    };
    match segments.get(1).map(String::as_str) {
        None => {
            let mut out = Map::new();
            let expand = body::query_value(&pairs, "$expand").unwrap_or("");
            out.insert(
                "@odata.context".into(),
                json!(format!(
                    "{base}/$metadata#EntityDefinitions(Attributes())/$entity"
                )),
            );
            out.extend(select(entity_metadata(entity), fields.as_deref()));
            if expand.starts_with("Attributes") {
                let inner = expand
                    .strip_prefix("Attributes($select=")
                    .and_then(|s| s.strip_suffix(')'))
                    .map(odata::parse_select);
                let list: Vec<Value> = attributes()
                    .map(|a| match a {
                        Value::Object(map) => Value::Object(select(map, inner.as_deref())),
                        other => other,
                    })
                    .collect();
                out.insert("Attributes".into(), Value::Array(list));
            } else if !expand.is_empty() {
                return Err(bad_request(format!(
                    "Could not find a property named '{expand}' on type 'Microsoft.Dynamics.CRM.EntityMetadata'."
                )));
            }
            Ok(Json(Value::Object(out)).into_response())
        }
        Some("Attributes") => {
            let cast = segments.get(2).map(String::as_str);
            // `$expand=OptionSet` (or GlobalOptionSet) keeps the option set next to `$select`.
            let fields = fields.map(|mut f| {
                let expand = body::query_value(&pairs, "$expand").unwrap_or("");
                f.extend(
                    odata::parse_select(expand)
                        .into_iter()
                        .map(|e| e.split('(').next().unwrap_or("").to_owned()),
                );
                f
            });
            let list: Vec<Value> = attributes()
                .filter(|a| {
                    cast.is_none_or(|c| {
                        a["@odata.type"]
                            .as_str()
                            .is_some_and(|t| t.trim_start_matches('#') == c)
                    })
                })
                .map(|a| match a {
                    Value::Object(map) => Value::Object(select(map, fields.as_deref())),
                    other => other,
                })
                .collect();
            Ok(Json(json!({"@odata.context": format!("{base}/$metadata#EntityDefinitions('{name}')/Attributes"), "value": list})).into_response())
        }
        Some(other) => Err(bad_request(format!(
            "Resource not found for the segment '{other}'."
        ))),
    }
}
