//! Timestamps in each service's wire format, kept strictly increasing per service so
//! that clients polling by "modified after" never miss two changes made in the same tick.

use chrono::{DateTime, Duration, Utc};

/// The last timestamps handed out, per service.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stamps {
    partner_center: Option<DateTime<Utc>>,
    salesforce: Option<DateTime<Utc>>,
}

impl Stamps {
    /// The next Partner Center time: now, or 100 ns after the previous one.
    pub(crate) fn next_partner_center(&mut self) -> DateTime<Utc> {
        next(&mut self.partner_center, Duration::nanoseconds(100))
    }

    /// The next Salesforce time: now, or 1 ms after the previous one.
    pub(crate) fn next_salesforce(&mut self) -> DateTime<Utc> {
        next(&mut self.salesforce, Duration::milliseconds(1))
    }
}

fn next(last: &mut Option<DateTime<Utc>>, tick: Duration) -> DateTime<Utc> {
    let now = truncate(Utc::now(), tick);
    let stamp = match *last {
        Some(previous) if now <= previous => previous + tick,
        _ => now,
    };
    *last = Some(stamp);
    stamp
}

fn truncate(time: DateTime<Utc>, tick: Duration) -> DateTime<Utc> {
    let nanos = tick.num_nanoseconds().unwrap_or(1).max(1);
    let sub = i64::from(time.timestamp_subsec_nanos());
    time - Duration::nanoseconds(sub % nanos)
}

/// Partner Center: `2019-02-23T02:05:23.2931817Z` (7 fractional digits).
pub(crate) fn partner_center(time: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}Z",
        time.format("%Y-%m-%dT%H:%M:%S"),
        time.timestamp_subsec_nanos() / 100
    )
}

/// Webhook payloads: `2018-02-17T00:05:39.5485487+00:00`.
pub(crate) fn webhook(time: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}+00:00",
        time.format("%Y-%m-%dT%H:%M:%S"),
        time.timestamp_subsec_nanos() / 100
    )
}

/// Dataverse: `2024-01-31T10:00:00Z` (whole seconds).
pub(crate) fn dataverse(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Salesforce: `2024-01-31T10:00:00.000+0000`.
pub(crate) fn salesforce(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Parses the date-time forms the services accept: RFC 3339 (`Z` or offset, any
/// fraction), Salesforce's `+0000` offsets, and a bare date (midnight UTC).
pub(crate) fn parse(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// Parses a bare `YYYY-MM-DD` date.
pub(crate) fn parse_date(text: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_have_the_documented_shape() {
        let t = parse("2019-02-23T02:05:23.2931817Z").unwrap_or_default();
        assert_eq!(partner_center(t), "2019-02-23T02:05:23.2931817Z");
        assert_eq!(webhook(t), "2019-02-23T02:05:23.2931817+00:00");
        assert_eq!(dataverse(t), "2019-02-23T02:05:23Z");
        assert_eq!(salesforce(t), "2019-02-23T02:05:23.293+0000");
        assert_eq!(
            parse("2019-02-23T02:05:23.293+0000"),
            parse("2019-02-23T02:05:23.293Z")
        );
    }

    #[test]
    fn stamps_strictly_increase() {
        let mut stamps = Stamps::default();
        let a = stamps.next_salesforce();
        let b = stamps.next_salesforce();
        assert!(b > a);
        let c = stamps.next_partner_center();
        let d = stamps.next_partner_center();
        assert!(d > c);
    }
}
