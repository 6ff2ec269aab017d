//! Fault injection rules: per service, method and path prefix, at a rate, a number of
//! times. Managed through `POST /_sandbox/faults` and `DELETE /_sandbox/faults`.

use serde::{Deserialize, Serialize};

use super::error::Service;

/// One fault rule.
///
/// ```json
/// {"service": "dataverse", "method": "PATCH", "path_prefix": "/api/data/v9.2/opportunities",
///  "kind": "status", "code": 503, "retry_after": 2, "rate": 0.5, "count": 3}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Assigned by the sandbox when the rule is added.
    #[serde(default)]
    pub id: Option<String>,
    /// The service whose listener the rule applies to; absent = every service.
    #[serde(default)]
    pub service: Option<Service>,
    /// HTTP method (any case); absent = every method.
    #[serde(default)]
    pub method: Option<String>,
    /// Path prefix, e.g. `/v1.0/engagements/referrals`; absent = every path.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// What happens to a matching request.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Probability (0..1) that a matching request is affected; default 1.
    #[serde(default = "always")]
    pub rate: f64,
    /// How many more requests the rule affects before it is removed; absent = unlimited.
    #[serde(default)]
    pub count: Option<u32>,
}

fn always() -> f64 {
    1.0
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Delay the request, then serve it normally.
    Latency {
        /// Delay in milliseconds.
        ms: u64,
    },
    /// Answer with this status and the service's error body instead of serving.
    Status {
        /// HTTP status code (400..=599).
        code: u16,
        /// `Retry-After` seconds to send along.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Close the connection without sending a response.
    Drop,
    /// Answer 429 Too Many Requests with `Retry-After`.
    Throttle {
        /// `Retry-After` seconds.
        #[serde(default = "one_second")]
        retry_after: u64,
    },
}

fn one_second() -> u64 {
    1
}

impl FaultRule {
    /// Reads a rule from JSON, refusing unknown keys (serde cannot with a flattened tag).
    pub fn from_json(value: serde_json::Value) -> Result<FaultRule, String> {
        let kind = value
            .get("kind")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let extra: &[&str] = match kind {
            "latency" => &["ms"],
            "status" => &["code", "retry_after"],
            "throttle" => &["retry_after"],
            _ => &[],
        };
        if let Some(map) = value.as_object() {
            let common = [
                "id",
                "service",
                "method",
                "path_prefix",
                "kind",
                "rate",
                "count",
            ];
            if let Some(key) = map
                .keys()
                .find(|k| !common.contains(&k.as_str()) && !extra.contains(&k.as_str()))
            {
                return Err(format!("unknown field `{key}` in a `{kind}` fault rule"));
            }
        }
        let rule: FaultRule = serde_json::from_value(value).map_err(|e| e.to_string())?;
        rule.check()?;
        Ok(rule)
    }

    /// Checks the rule's values.
    fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.rate) || self.rate.is_nan() {
            return Err(format!("rate must be between 0 and 1, not {}", self.rate));
        }
        if let FaultKind::Status { code, .. } = self.kind
            && !(400..=599).contains(&code)
        {
            return Err(format!("status code must be 400..=599, not {code}"));
        }
        if self.count == Some(0) {
            return Err("count must be at least 1".to_owned());
        }
        Ok(())
    }

    fn matches(&self, service: Service, method: &str, path: &str) -> bool {
        self.service.is_none_or(|s| s == service)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

/// The active rules, first match wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    rules: Vec<FaultRule>,
    next_id: u64,
}

impl Faults {
    /// Adds a checked rule and returns it with its id.
    pub(crate) fn add(&mut self, mut rule: FaultRule) -> FaultRule {
        self.next_id += 1;
        rule.id = Some(format!("fault-{}", self.next_id));
        self.rules.push(rule.clone());
        rule
    }

    /// The active rules.
    pub(crate) fn list(&self) -> &[FaultRule] {
        &self.rules
    }

    /// Removes every rule.
    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// Removes one rule; false when there is none with that id.
    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.id.as_deref() != Some(id));
        before != self.rules.len()
    }

    /// The fault to apply to a request, if any; consumes one use of the rule.
    pub(crate) fn pick(
        &mut self,
        service: Service,
        method: &str,
        path: &str,
        roll: f64,
    ) -> Option<FaultKind> {
        let index = self
            .rules
            .iter()
            .position(|r| r.matches(service, method, path))?;
        let rule = &mut self.rules[index];
        if roll >= rule.rate {
            return None;
        }
        let kind = rule.kind.clone();
        if let Some(count) = rule.count.as_mut() {
            *count -= 1;
            if *count == 0 {
                self.rules.remove(index);
            }
        }
        Some(kind)
    }
}

/// A uniform random number in [0, 1).
///
/// From the 48 bits in front of a v4 UUID's version nibble, which are all
/// random (its low 64 bits begin with the fixed variant bits `10`, which would
/// keep every roll in [0.5, 0.75)).
pub(crate) fn roll() -> f64 {
    let bits = (uuid::Uuid::new_v4().as_u128() >> 80) as u64;
    bits as f64 / (1u64 << 48) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_in_the_documented_shape() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"service":"dataverse","kind":"status","code":503,"retry_after":2,"count":1}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            rule.kind,
            FaultKind::Status {
                code: 503,
                retry_after: Some(2)
            }
        );
        let drop: FaultRule =
            serde_json::from_str(r#"{"kind":"drop"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(drop.kind, FaultKind::Drop);
        assert!(serde_json::from_str::<FaultRule>(r#"{"kind":"boom"}"#).is_err());
        assert!(FaultRule::from_json(serde_json::json!({"kind": "drop", "bogus": 1})).is_err());
        assert!(FaultRule::from_json(serde_json::json!({"kind": "latency", "ms": 5})).is_ok());
    }

    #[test]
    fn rolls_cover_the_whole_unit_interval() {
        let rolls: Vec<f64> = (0..2000).map(|_| roll()).collect();
        assert!(rolls.iter().all(|r| (0.0..1.0).contains(r)));
        for (low, high) in [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)] {
            let n = rolls.iter().filter(|r| (low..high).contains(*r)).count();
            assert!(
                (300..700).contains(&n),
                "{n} of 2000 rolls in [{low}, {high})"
            );
        }
        // A rule at rate 0.3 affects about 30% of the requests.
        let mut faults = Faults::default();
        faults.add(FaultRule {
            id: None,
            service: None,
            method: None,
            path_prefix: None,
            kind: FaultKind::Drop,
            rate: 0.3,
            count: None,
        });
        let hits = (0..2000)
            .filter(|_| {
                faults
                    .pick(Service::Dataverse, "GET", "/", roll())
                    .is_some()
            })
            .count();
        assert!((450..750).contains(&hits), "{hits} of 2000 at rate 0.3");
    }

    #[test]
    fn count_limits_uses() {
        let mut faults = Faults::default();
        faults.add(FaultRule {
            id: None,
            service: Some(Service::Salesforce),
            method: None,
            path_prefix: Some("/services".into()),
            kind: FaultKind::Drop,
            rate: 1.0,
            count: Some(1),
        });
        assert!(
            faults
                .pick(Service::Dataverse, "GET", "/services", 0.0)
                .is_none()
        );
        assert!(
            faults
                .pick(Service::Salesforce, "GET", "/services/x", 0.0)
                .is_some()
        );
        assert!(
            faults
                .pick(Service::Salesforce, "GET", "/services/x", 0.0)
                .is_none()
        );
    }
}
