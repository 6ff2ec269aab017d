//! The allow-list of one connection: only configured base URLs (scheme, host,
//! port and path prefix) and the connection's `allowed_hosts` are ever called.
//! Every URL that comes from outside — an `@odata.nextLink`, a `nextRecordsUrl`, a
//! Salesforce `instance_url`, a webhook's `ResourceUri`, a declarative next link —
//! is checked here before any token is attached to a request.

use url::Url;

use crate::runtime::connectors::{ConnectorError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any subdomain of `example.com`.
    Suffix(String),
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
            HostPattern::Suffix(s) => {
                host.len() > s.len() + 1 && host.to_ascii_lowercase().ends_with(&format!(".{s}"))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    /// Accepted schemes.
    schemes: Vec<String>,
    host: HostPattern,
    /// Port, or `None` for the scheme's default port.
    port: Option<u16>,
    /// Path prefix without a trailing slash ("" for any path).
    path: String,
}

impl Origin {
    fn of_url(url: &Url) -> Option<Origin> {
        Some(Origin {
            schemes: vec![url.scheme().to_string()],
            host: HostPattern::Exact(url.host_str()?.to_ascii_lowercase()),
            port: url.port(),
            path: url.path().trim_end_matches('/').to_string(),
        })
    }

    fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        self.schemes.iter().any(|s| s == url.scheme())
            && self.host.matches(host)
            && url.port_or_known_default() == self.port.or_else(|| default_port(url.scheme()))
            && path_within(url.path(), &self.path)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

fn path_within(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The URLs a connection may call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UrlGuard {
    origins: Vec<Origin>,
}

impl UrlGuard {
    /// A guard allowing `bases` (scheme, host, port and path prefix) and
    /// `allowed_hosts` entries: `host`, `host:port`, `*.domain` or a full URL. A bare
    /// host accepts `https` (and the first base's scheme, for loopback setups).
    pub(crate) fn new(bases: &[&Url], allowed_hosts: &[String]) -> Result<UrlGuard, String> {
        let mut origins: Vec<Origin> = bases.iter().filter_map(|u| Origin::of_url(u)).collect();
        let base_scheme = bases.first().map(|u| u.scheme().to_string());
        for entry in allowed_hosts {
            let entry = entry.trim();
            if entry.contains("://") {
                let url =
                    Url::parse(entry).map_err(|e| format!("allowed_hosts entry `{entry}`: {e}"))?;
                origins.push(
                    Origin::of_url(&url)
                        .ok_or_else(|| format!("allowed_hosts entry `{entry}` has no host"))?,
                );
                continue;
            }
            let (host, port) = match entry.rsplit_once(':') {
                Some((h, p)) => (
                    h,
                    Some(
                        p.parse::<u16>()
                            .map_err(|_| format!("allowed_hosts entry `{entry}`: bad port"))?,
                    ),
                ),
                None => (entry, None),
            };
            if host.is_empty() || host.contains(['/', '@', '?', '#']) {
                return Err(format!("allowed_hosts entry `{entry}` is not a host name"));
            }
            let pattern = match host.strip_prefix("*.") {
                Some(suffix) => HostPattern::Suffix(suffix.to_ascii_lowercase()),
                None => HostPattern::Exact(host.to_ascii_lowercase()),
            };
            let mut schemes = vec!["https".to_string()];
            if let Some(s) = &base_scheme
                && s != "https"
            {
                schemes.push(s.clone());
            }
            origins.push(Origin {
                schemes,
                host: pattern,
                port,
                path: String::new(),
            });
        }
        Ok(UrlGuard { origins })
    }

    /// Ok when `url` may be called; otherwise an `Invalid` error naming its host.
    pub(crate) fn check(&self, url: &Url) -> Result<(), ConnectorError> {
        let plain = url.username().is_empty() && url.password().is_none();
        if plain && self.origins.iter().any(|o| o.matches(url)) {
            return Ok(());
        }
        Err(ConnectorError::new(
            ErrorKind::Invalid,
            format!(
                "refused to call {}: not the connection's base URL nor one of its allowed_hosts",
                describe_host(url)
            ),
        ))
    }

    /// Parses `text` (absolute, or relative to `base`) and checks it.
    pub(crate) fn resolve(&self, base: &Url, text: &str) -> Result<Url, ConnectorError> {
        let url = base
            .join(text)
            .map_err(|e| ConnectorError::new(ErrorKind::Invalid, format!("not a URL ({e})")))?;
        self.check(&url)?;
        Ok(url)
    }
}

/// `scheme://host[:port]` of a URL, for messages (never its path or query, which
/// may carry tokens).
pub(crate) fn describe_host(url: &Url) -> String {
    let host = url.host_str().unwrap_or("(no host)");
    match url.port() {
        Some(p) => format!("host `{host}:{p}` ({})", url.scheme()),
        None => format!("host `{host}` ({})", url.scheme()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn base_origin_and_path_prefix() {
        let base = url("https://org.crm.dynamics.com/api/");
        let g = UrlGuard::new(&[&base], &[]).unwrap_or_default();
        assert!(
            g.check(&url("https://org.crm.dynamics.com/api/data/v9.2/x"))
                .is_ok()
        );
        assert!(
            g.check(&url("https://ORG.crm.dynamics.com:443/api"))
                .is_ok()
        );
        assert!(g.check(&url("https://org.crm.dynamics.com/apix")).is_err());
        assert!(
            g.check(&url("https://org.crm.dynamics.com/api/../other"))
                .is_err()
        );
        assert!(g.check(&url("http://org.crm.dynamics.com/api/x")).is_err());
        assert!(
            g.check(&url("https://org.crm.dynamics.com:8443/api/x"))
                .is_err()
        );
        assert!(g.check(&url("https://evil.com/api/x")).is_err());
        assert!(
            g.check(&url("https://user@org.crm.dynamics.com/api/x"))
                .is_err()
        );
        let e = g.check(&url("https://evil.com/x?token=1")).err();
        assert!(e.is_some_and(|e| e.message.contains("evil.com") && !e.message.contains("token")));
    }

    #[test]
    fn allowed_hosts() {
        let base = url("http://127.0.0.1:9000");
        let hosts = vec![
            "*.my.salesforce.com".to_string(),
            "127.0.0.1:9001".to_string(),
            "https://other.example/api".to_string(),
        ];
        let g = UrlGuard::new(&[&base], &hosts).unwrap_or_default();
        assert!(
            g.check(&url("https://na1.my.salesforce.com/services"))
                .is_ok()
        );
        assert!(g.check(&url("https://my.salesforce.com/services")).is_err());
        assert!(g.check(&url("http://127.0.0.1:9001/x")).is_ok());
        assert!(g.check(&url("http://127.0.0.1:9002/x")).is_err());
        assert!(g.check(&url("https://other.example/api/v1")).is_ok());
        assert!(g.check(&url("https://other.example/v1")).is_err());
        assert!(UrlGuard::new(&[&base], &["a/b".to_string()]).is_err());
    }
}
