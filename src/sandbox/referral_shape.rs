//! The Referral resource's shape, from Microsoft's connector definition
//! (`specs/partner-center-referrals.swagger.json`): known properties per object, their
//! types and enums. Input is bound case-insensitively (the service is ASP.NET OData),
//! unknown properties are refused, `dealValue` is accepted as a number or a numeric
//! string, and nulls are dropped (the schema has no nullable properties).

use serde_json::{Map, Value};

/// The type of one property.
#[derive(Debug)]
pub(crate) enum Shape {
    Str,
    Num,
    Bool,
    /// Anything (untyped array items in the definition).
    Any,
    /// Any JSON object.
    AnyObject,
    Enum(&'static [&'static str]),
    Object(&'static [(&'static str, Shape)]),
    Array(&'static Shape),
}

/// `status` values.
pub(crate) const STATUS: &[&str] = &["None", "New", "Active", "Closed"];
/// `substatus` values.
pub(crate) const SUBSTATUS: &[&str] = &[
    "None", "Pending", "Received", "Accepted", "Won", "Lost", "Declined", "Expired",
];
const TYPE: &[&str] = &["Independent", "Shared"];
const QUALIFICATION: &[&str] = &["None", "Direct", "MarketingQualified", "SalesQualified"];
const SALES_STAGE: &[&str] = &["Qualify", "Develop", "Propose", "Close"];
const DIRECTION: &[&str] = &["Incoming", "Outgoing"];
const ASSISTANCE: &[&str] = &[
    "Unknown",
    "GeneralOrOther",
    "CustomerTechnicalArchitecture",
    "ProofOfConceptOrDemo",
    "QuotesOrLicensing",
    "PostSalesCustomerSuccess",
    "WorkloadSpecificValueProposition",
];
const TARGET_TYPE: &[&str] = &["None", "BusinessProfileLocation", "SolutionProfile"];

const CONTACT_PREFERENCE: Shape = Shape::Object(&[
    ("disableNotifications", Shape::Bool),
    ("locale", Shape::Str),
]);

const MEMBER: Shape = Shape::Object(&[
    ("contactPreference", CONTACT_PREFERENCE),
    ("email", Shape::Str),
    ("firstName", Shape::Str),
    ("lastName", Shape::Str),
    ("phoneNumber", Shape::Str),
]);

const TAG: Shape = Shape::Object(&[("id", Shape::Str)]);

const ADDRESS: Shape = Shape::Object(&[
    ("addressLine1", Shape::Str),
    ("addressLine2", Shape::Str),
    ("city", Shape::Str),
    ("country", Shape::Str),
    ("postalCode", Shape::Str),
    ("region", Shape::Str),
    ("state", Shape::Str),
]);

const LINK: Shape = Shape::Object(&[("method", Shape::Str), ("uri", Shape::Str)]);

/// The whole Referral.
pub(crate) static REFERRAL: Shape = Shape::Object(&[
    ("@odata.context", Shape::Str),
    ("id", Shape::Str),
    ("engagementId", Shape::Str),
    ("organizationId", Shape::Str),
    ("organizationName", Shape::Str),
    ("name", Shape::Str),
    ("externalReferenceId", Shape::Str),
    ("createdDateTime", Shape::Str),
    ("updatedDateTime", Shape::Str),
    ("expirationDateTime", Shape::Str),
    ("acceptedDateTime", Shape::Str),
    ("closedDateTime", Shape::Str),
    ("status", Shape::Enum(STATUS)),
    ("substatus", Shape::Enum(SUBSTATUS)),
    ("statusReason", Shape::Str),
    ("type", Shape::Enum(TYPE)),
    ("qualification", Shape::Enum(QUALIFICATION)),
    ("direction", Shape::Enum(DIRECTION)),
    ("salesStage", Shape::Enum(SALES_STAGE)),
    ("campaignId", Shape::Str),
    ("favorite", Shape::Bool),
    ("lastModifiedVia", Shape::Str),
    ("lastRunId", Shape::Str),
    ("referralProgram", Shape::Str),
    ("mpnId", Shape::Str),
    ("registrationStatus", Shape::Str),
    ("callToAction", Shape::Str),
    ("referralSource", Shape::Str),
    ("quality", Shape::Str),
    ("isSpam", Shape::Bool),
    ("tags", Shape::Array(&Shape::Str)),
    (
        "customerProfile",
        Shape::Object(&[
            ("name", Shape::Str),
            ("address", ADDRESS),
            ("size", Shape::Str),
            ("team", Shape::Array(&MEMBER)),
            ("ids", Shape::Array(&Shape::Any)),
        ]),
    ),
    (
        "consent",
        Shape::Object(&[
            ("consentToContact", Shape::Bool),
            ("consentToToShareInfoWithOthers", Shape::Bool),
            ("consentToShareReferralWithMicrosoftSellers", Shape::Bool),
        ]),
    ),
    (
        "details",
        Shape::Object(&[
            ("notes", Shape::Str),
            ("dealValue", Shape::Num),
            ("currency", Shape::Str),
            ("closingDateTime", Shape::Str),
            ("customerAction", Shape::Str),
            ("customerRequestedContact", Shape::Bool),
            (
                "requirements",
                Shape::Object(&[
                    ("industries", Shape::Array(&TAG)),
                    ("products", Shape::Array(&TAG)),
                    ("services", Shape::Array(&TAG)),
                    ("solutions", Shape::Array(&Shape::Any)),
                    ("offers", Shape::Array(&Shape::Any)),
                    ("additionalRequirements", Shape::AnyObject),
                ]),
            ),
        ]),
    ),
    ("team", Shape::Array(&MEMBER)),
    (
        "inviteContext",
        Shape::Object(&[
            ("notes", Shape::Str),
            (
                "invitedBy",
                Shape::Object(&[
                    ("organizationId", Shape::Str),
                    ("organizationName", Shape::Str),
                ]),
            ),
            ("assistanceRequestCode", Shape::Enum(ASSISTANCE)),
        ]),
    ),
    (
        "target",
        Shape::Array(&Shape::Object(&[
            ("id", Shape::Str),
            ("type", Shape::Enum(TARGET_TYPE)),
        ])),
    ),
    (
        "trackingInfo",
        Shape::Object(&[("microsoftMsxId", Shape::Str)]),
    ),
    ("registrations", Shape::Array(&Shape::AnyObject)),
    (
        "links",
        Shape::Object(&[("relatedReferrals", LINK), ("self", LINK)]),
    ),
    ("eTag", Shape::Str),
]);

/// Properties only the server writes (ignored in request bodies, refused in JSON-Patch).
pub(crate) const SERVER_MANAGED: &[&str] = &[
    "@odata.context",
    "id",
    "engagementId",
    "organizationId",
    "organizationName",
    "createdDateTime",
    "updatedDateTime",
    "expirationDateTime",
    "acceptedDateTime",
    "closedDateTime",
    "direction",
    "lastModifiedVia",
    "lastRunId",
    "registrations",
    "registrationStatus",
    "quality",
    "isSpam",
    "trackingInfo",
    "links",
    "eTag",
];

impl Shape {
    /// The canonical name and shape of a property of an object shape (case-insensitive).
    pub(crate) fn field(&self, name: &str) -> Option<(&'static str, &'static Shape)> {
        match self {
            Shape::Object(fields) => fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(n, s)| (*n, s)),
            _ => None,
        }
    }

    /// Binds a value to the shape: canonical key names and enum spellings, numeric
    /// strings to numbers where a number is expected, nulls dropped. `None` = null.
    pub(crate) fn bind(&self, value: &Value, at: &str) -> Result<Option<Value>, String> {
        self.bind_as(value, at, false)
    }

    /// [`Shape::bind`]; `lenient` (seeding) keeps enum values the definition lacks, as
    /// a newer service could return them.
    pub(crate) fn bind_as(
        &self,
        value: &Value,
        at: &str,
        lenient: bool,
    ) -> Result<Option<Value>, String> {
        if value.is_null() {
            return Ok(None);
        }
        let wrong = |expected: &str| {
            Err(format!(
                "Invalid value at '{}': expected {expected}, found {}.",
                display(at),
                kind(value)
            ))
        };
        let bound = match (self, value) {
            (Shape::Any, v) => v.clone(),
            (Shape::AnyObject, Value::Object(_)) => value.clone(),
            (Shape::AnyObject, _) => return wrong("an object"),
            (Shape::Str, Value::String(_)) => value.clone(),
            (Shape::Str, _) => return wrong("a string"),
            (Shape::Bool, Value::Bool(_)) => value.clone(),
            (Shape::Bool, _) => return wrong("a boolean"),
            (Shape::Num, Value::Number(_)) => value.clone(),
            (Shape::Num, Value::String(text)) => {
                match serde_json::from_str::<serde_json::Number>(text.trim()) {
                    Ok(n) if n.as_f64().is_some_and(f64::is_finite) => Value::Number(n),
                    _ => return wrong("a number"),
                }
            }
            (Shape::Num, _) => return wrong("a number"),
            (Shape::Enum(values), Value::String(text)) => {
                match values.iter().find(|v| v.eq_ignore_ascii_case(text)) {
                    Some(v) => Value::String((*v).to_owned()),
                    None if lenient => Value::String(text.clone()),
                    None => {
                        return Err(format!(
                            "'{text}' is not a valid value for '{}'. Valid values: {}.",
                            display(at),
                            values.join(", ")
                        ));
                    }
                }
            }
            (Shape::Enum(_), _) => return wrong("a string"),
            (Shape::Array(item), Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    if let Some(v) = item.bind_as(v, &format!("{at}/{i}"), lenient)? {
                        out.push(v);
                    }
                }
                Value::Array(out)
            }
            (Shape::Array(_), _) => return wrong("an array"),
            (Shape::Object(_), Value::Object(map)) => {
                Value::Object(self.bind_object(map, at, lenient)?)
            }
            (Shape::Object(_), _) => return wrong("an object"),
        };
        Ok(Some(bound))
    }

    fn bind_object(
        &self,
        map: &Map<String, Value>,
        at: &str,
        lenient: bool,
    ) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        for (key, value) in map {
            let Some((name, shape)) = self.field(key) else {
                return Err(format!(
                    "The property '{key}' does not exist on type '{}'. Make sure to only use property names that are defined by the type.",
                    type_name(at)
                ));
            };
            if out.contains_key(name) {
                return Err(format!("The property '{name}' appears more than once."));
            }
            if let Some(bound) = shape.bind_as(value, &format!("{at}/{name}"), lenient)? {
                out.insert(name.to_owned(), bound);
            }
        }
        Ok(out)
    }
}

fn display(at: &str) -> &str {
    if at.is_empty() { "/" } else { at }
}

fn type_name(at: &str) -> String {
    let last = at
        .rsplit('/')
        .find(|s| !s.is_empty() && s.parse::<usize>().is_err());
    match last {
        None => "Microsoft.Partner.Service.PartnerReferrals.Contracts.V3.Referral".to_owned(),
        Some(segment) => {
            format!("Microsoft.Partner.Service.PartnerReferrals.Contracts.V3.{segment}")
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// True for a path the `$filter` may use: a scalar of the shape (collections only as
/// lambda targets).
pub(crate) fn filterable(path: &[String], collection: bool) -> bool {
    let mut shape: &Shape = &REFERRAL;
    for segment in path {
        if let Shape::Array(item) = shape {
            shape = item;
        }
        match shape.field(segment) {
            Some((name, next)) if name == segment && name != "links" => shape = next,
            _ => return false,
        }
    }
    match shape {
        Shape::Array(_) => collection,
        Shape::Object(_) | Shape::AnyObject => false,
        _ => !collection,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binding_is_case_insensitive_and_coerces_deal_value() {
        let bound = REFERRAL
            .bind(&json!({"Name": "x", "Details": {"DealValue": "10000", "notes": null}, "status": "active"}), "")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            bound,
            Some(json!({"name": "x", "details": {"dealValue": 10000}, "status": "Active"}))
        );
    }

    #[test]
    fn unknown_properties_and_bad_enums_are_refused() {
        assert!(REFERRAL.bind(&json!({"nmae": "x"}), "").is_err());
        assert!(REFERRAL.bind(&json!({"status": "Open"}), "").is_err());
        assert!(
            REFERRAL
                .bind(&json!({"details": {"dealValue": "lots"}}), "")
                .is_err()
        );
    }

    #[test]
    fn filterable_paths() {
        let p = |s: &str| s.split('/').map(str::to_owned).collect::<Vec<_>>();
        assert!(filterable(&p("customerProfile/address/country"), false));
        assert!(filterable(&p("team"), true));
        assert!(filterable(&p("team/email"), false));
        assert!(!filterable(&p("team"), false));
        assert!(!filterable(&p("nope"), false));
    }
}
