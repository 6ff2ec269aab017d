//! Small value types shared by every file kind: durations, directions, sides,
//! conflict policies and the "template or literal" value.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A duration written as a number and a unit: `500ms`, `30s`, `5m`, `2h`, `7d`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Duration(
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h|d)$"))]
    /// A whole number followed by `ms`, `s`, `m`, `h` or `d`.
    pub String,
);

impl Duration {
    /// The duration as a standard library value, or `None` when the text is malformed.
    pub fn to_std(&self) -> Option<std::time::Duration> {
        parse_duration(&self.0)
    }
}

/// Parses `30s`-style durations; `None` for anything else.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "s" => n.checked_mul(1_000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(millis))
}

/// The two systems a mapping table links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Microsoft Partner Center (the referral).
    PartnerCenter,
    /// The CRM (Dynamics 365 / Dataverse, Salesforce or a declarative `http` CRM).
    Crm,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::PartnerCenter => Side::Crm,
            Side::Crm => Side::PartnerCenter,
        }
    }

    /// The YAML spelling of the side.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::PartnerCenter => "partner_center",
            Side::Crm => "crm",
        }
    }
}

/// Which way data flows through a mapping row, value-map entry or projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Both ways: Partner Center to CRM and CRM to Partner Center.
    #[default]
    Both,
    /// Only from Partner Center into the CRM.
    ToCrm,
    /// Only from the CRM into Partner Center.
    ToPartnerCenter,
}

impl Direction {
    /// True when data may flow towards `target`.
    pub fn allows(self, target: Side) -> bool {
        matches!(
            (self, target),
            (Direction::Both, _)
                | (Direction::ToCrm, Side::Crm)
                | (Direction::ToPartnerCenter, Side::PartnerCenter)
        )
    }

    /// The YAML spelling of the direction.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Both => "both",
            Direction::ToCrm => "to_crm",
            Direction::ToPartnerCenter => "to_partner_center",
        }
    }
}

/// Who wins when both systems changed the same field since the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// Partner Center's value wins.
    PartnerCenter,
    /// The CRM's value wins.
    Crm,
    /// The value changed most recently wins (by the records' modification times).
    #[default]
    Newest,
    /// Nothing is written; the conflict is parked for a person (`cosync conflicts`).
    Manual,
}

/// Bounds on one run of a flow. Each limit, when hit, fails the run with its own
/// diagnostic (`budget-exceeded`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Most steps one run may execute (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u64>,
    /// Most connector calls (HTTP requests) one run may make (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_calls: Option<u64>,
    /// Most loop iterations (foreach items and until rounds together, default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u64>,
    /// Wall-clock limit for the whole run (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// Retry policy for connector calls and queued events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Total attempts including the first (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Delay before the first retry (default `500ms`); doubled each time, with jitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_backoff: Option<Duration>,
    /// Upper bound of the delay between attempts (default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("500ms"),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration("2m"),
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(
            parse_duration("7d"),
            Some(std::time::Duration::from_secs(7 * 86_400))
        );
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("5 m"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    #[test]
    fn direction_allows() {
        assert!(Direction::Both.allows(Side::Crm));
        assert!(Direction::ToCrm.allows(Side::Crm));
        assert!(!Direction::ToCrm.allows(Side::PartnerCenter));
        assert!(Direction::ToPartnerCenter.allows(Side::PartnerCenter));
    }
}
