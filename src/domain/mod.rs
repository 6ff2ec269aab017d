//! Facts about Partner Center that cosync checks against: the known enumerations
//! (domain.md §1.4, §1.5) and the Referral resource's fields, read from Microsoft's
//! own connector definition (`specs/partner-center-referrals.swagger.json`).

use std::sync::LazyLock;

use serde_json::Value;

use crate::spec::mapping::KnownEnum;

/// Parses the time formats the services answer with: RFC 3339 (Partner Center,
/// Dataverse) or Salesforce's `2024-01-01T00:00:00.000+0000`.
pub fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// `status` values.
pub const REFERRAL_STATUS: &[&str] = &["None", "New", "Active", "Closed"];
/// `substatus` values.
pub const REFERRAL_SUBSTATUS: &[&str] = &[
    "None", "Pending", "Received", "Accepted", "Won", "Lost", "Declined", "Expired",
];
/// The allowed `[status, substatus]` pairs (domain.md §1.5).
pub const STATUS_SUBSTATUS: &[(&str, &str)] = &[
    ("New", "Pending"),
    ("New", "Received"),
    ("Active", "Accepted"),
    ("Closed", "Won"),
    ("Closed", "Lost"),
    ("Closed", "Declined"),
    ("Closed", "Expired"),
];
/// `inviteContext.assistanceRequestCode` values ("How can Microsoft help?").
pub const ASSISTANCE_REQUEST_CODE: &[&str] = &[
    "Unknown",
    "GeneralOrOther",
    "CustomerTechnicalArchitecture",
    "ProofOfConceptOrDemo",
    "QuotesOrLicensing",
    "PostSalesCustomerSuccess",
    "WorkloadSpecificValueProposition",
];
/// `salesStage` values.
pub const SALES_STAGE: &[&str] = &["Qualify", "Develop", "Propose", "Close"];
/// `type` values.
pub const REFERRAL_TYPE: &[&str] = &["Independent", "Shared"];
/// `qualification` values.
pub const REFERRAL_QUALIFICATION: &[&str] =
    &["None", "Direct", "MarketingQualified", "SalesQualified"];
/// `customerProfile.size` values.
pub const CUSTOMER_SIZE: &[&str] = &[
    "1to50employees",
    "51to500employees",
    "Morethan500employees",
    "1to9employees",
    "10to50employees",
    "51to250employees",
    "251to1000employees",
    "1001to5000employees",
    "5001to10000employees",
    "10001to20000employees",
    "Morethan20000employees",
];

impl KnownEnum {
    /// The enumeration's values as JSON (pairs are two-element lists).
    pub fn values(self) -> Vec<Value> {
        let strings = |xs: &[&str]| xs.iter().map(|s| Value::String((*s).into())).collect();
        match self {
            KnownEnum::ReferralStatus => strings(REFERRAL_STATUS),
            KnownEnum::ReferralSubstatus => strings(REFERRAL_SUBSTATUS),
            KnownEnum::ReferralStatusSubstatus => STATUS_SUBSTATUS
                .iter()
                .map(|(a, b)| Value::Array(vec![(*a).into(), (*b).into()]))
                .collect(),
            KnownEnum::AssistanceRequestCode => strings(ASSISTANCE_REQUEST_CODE),
            KnownEnum::SalesStage => strings(SALES_STAGE),
            KnownEnum::ReferralType => strings(REFERRAL_TYPE),
            KnownEnum::ReferralQualification => strings(REFERRAL_QUALIFICATION),
            KnownEnum::CustomerSize => strings(CUSTOMER_SIZE),
        }
    }

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KnownEnum::ReferralStatus => "referral_status",
            KnownEnum::ReferralSubstatus => "referral_substatus",
            KnownEnum::ReferralStatusSubstatus => "referral_status_substatus",
            KnownEnum::AssistanceRequestCode => "assistance_request_code",
            KnownEnum::SalesStage => "sales_stage",
            KnownEnum::ReferralType => "referral_type",
            KnownEnum::ReferralQualification => "referral_qualification",
            KnownEnum::CustomerSize => "customer_size",
        }
    }

    /// The enumeration read by a Partner Center path (or composite of paths), if any.
    pub fn for_paths(paths: &[&str]) -> Option<KnownEnum> {
        let norm: Vec<String> = paths.iter().map(|p| p.replace(' ', "")).collect();
        let norm: Vec<&str> = norm.iter().map(String::as_str).collect();
        Some(match norm.as_slice() {
            ["$.status"] => KnownEnum::ReferralStatus,
            ["$.substatus"] => KnownEnum::ReferralSubstatus,
            ["$.status", "$.substatus"] => KnownEnum::ReferralStatusSubstatus,
            ["$.inviteContext.assistanceRequestCode"] => KnownEnum::AssistanceRequestCode,
            ["$.salesStage"] => KnownEnum::SalesStage,
            ["$.type"] => KnownEnum::ReferralType,
            ["$.qualification"] => KnownEnum::ReferralQualification,
            ["$.customerProfile.size"] => KnownEnum::CustomerSize,
            _ => return None,
        })
    }
}

/// Microsoft's connector definition of the referrals API (Swagger 2.0).
pub const REFERRALS_SWAGGER: &str =
    include_str!("../../specs/partner-center-referrals.swagger.json");

/// The swagger definition name of the Referral resource.
pub const REFERRAL_DEFINITION: &str =
    "Microsoft.Partner.Service.PartnerReferrals.Contracts.V3.Referral";

static SWAGGER: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(REFERRALS_SWAGGER).unwrap_or(Value::Null));

/// The whole swagger document.
pub fn swagger() -> &'static Value {
    &SWAGGER
}

/// The Referral schema from the swagger document.
pub fn referral_schema() -> Option<&'static Value> {
    SWAGGER.get("definitions")?.get(REFERRAL_DEFINITION)
}

/// Fields of the referral that newer docs describe but the swagger lacks
/// (domain.md §1.3): accepted anyway.
const EXTRA_REFERRAL_FIELDS: &[&str] = &[
    "customerProfile/ids",
    "details/additionalRequirements",
    "partnerRole",
    "solutionArea",
    "solutionPlay",
    "customerMarketplaceIntent",
];

/// One step of a simple path: a field name, or "any element" of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldStep {
    /// A named field.
    Name(String),
    /// An element (index or wildcard) of a list.
    Element,
}

/// Checks a path of names/elements against the Referral schema. `Ok(())` when it
/// exists (or the schema is open below some point); `Err((index, known))` gives the
/// first unknown step and the field names allowed there.
pub fn check_referral_path(steps: &[FieldStep]) -> Result<(), (usize, Vec<String>)> {
    let Some(mut node) = referral_schema() else {
        return Ok(());
    };
    let mut trail = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if let FieldStep::Name(n) = step {
            trail.push(n.as_str());
            if EXTRA_REFERRAL_FIELDS.contains(&trail.join("/").as_str()) {
                return Ok(());
            }
        }
        match step {
            FieldStep::Name(name) => {
                let Some(props) = node.get("properties").and_then(Value::as_object) else {
                    return Ok(()); // open object
                };
                match props.get(name) {
                    Some(child) => node = child,
                    None => return Err((i, props.keys().cloned().collect())),
                }
            }
            FieldStep::Element => match node.get("items") {
                Some(items) => node = items,
                None => return Err((i, Vec::new())),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(names: &[&str]) -> Vec<FieldStep> {
        names
            .iter()
            .map(|n| {
                if *n == "*" {
                    FieldStep::Element
                } else {
                    FieldStep::Name((*n).into())
                }
            })
            .collect()
    }

    #[test]
    fn referral_paths_are_checked_against_the_swagger() {
        assert!(check_referral_path(&steps(&["details", "dealValue"])).is_ok());
        assert!(
            check_referral_path(&steps(&["details", "requirements", "solutions", "*", "id"]))
                .is_ok()
        );
        assert!(check_referral_path(&steps(&["inviteContext", "assistanceRequestCode"])).is_ok());
        let err = check_referral_path(&steps(&["details", "dealvalue"])).err();
        assert!(matches!(err, Some((1, ref known)) if known.contains(&"dealValue".to_string())));
    }

    #[test]
    fn the_swagger_enums_match_ours() {
        let schema = referral_schema().cloned().unwrap_or_default();
        let codes =
            &schema["properties"]["inviteContext"]["properties"]["assistanceRequestCode"]["enum"];
        let codes: Vec<&str> = codes
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(codes, ASSISTANCE_REQUEST_CODE);
        let stages = &schema["properties"]["salesStage"]["enum"];
        let stages: Vec<&str> = stages
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(stages, SALES_STAGE);
    }
}
