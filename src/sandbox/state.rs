//! The sandbox's state: every emulated service's records behind one mutex, held only
//! for short, synchronous critical sections (never across an `.await`). Writes that
//! must survive a restart are queued as [`StoreOp`]s and handed to the SQLite thread
//! after the lock is released.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::SandboxUrls;
use super::auth::Token;
use super::cert::Signer;
use super::dataverse::{Table, Tombstone};
use super::delivery::Delivery;
use super::faults::Faults;
use super::requests::RequestLog;
use super::salesforce::Cursor;
use super::seed::Seed;
use super::stamp::Stamps;
use super::store::{Store, StoreOp};

/// Tunable behaviour, readable and changeable at run time through
/// `GET`/`PATCH /_sandbox/settings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Lifetime of issued access tokens, in seconds (`expires_in`).
    pub token_lifetime_secs: u64,
    /// When true, a Microsoft token is only accepted by the service its audience
    /// (`scope` / `resource`) names; when false any valid Microsoft token works on every
    /// Microsoft service.
    pub strict_audience: bool,
    /// Server page size of the referrals list (`@odata.nextLink` beyond it).
    pub partner_center_page_size: usize,
    /// Dataverse default and maximum page size (`Prefer: odata.maxpagesize`).
    pub dataverse_max_page_size: usize,
    /// Salesforce default query batch size (`Sforce-Query-Options: batchSize` can lower it).
    pub salesforce_batch_size: usize,
    /// Salesforce API request allocation; calls beyond it answer `403 REQUEST_LIMIT_EXCEEDED`.
    pub salesforce_api_limit: u64,
    /// Webhook delivery policy.
    pub delivery: DeliveryPolicy,
    /// How many requests the request log keeps.
    pub request_log_capacity: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            token_lifetime_secs: 3599,
            strict_audience: false,
            partner_center_page_size: 100,
            dataverse_max_page_size: 5000,
            salesforce_batch_size: 2000,
            salesforce_api_limit: 100_000,
            delivery: DeliveryPolicy::default(),
            request_log_capacity: 5_000,
        }
    }
}

/// How webhook events are delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryPolicy {
    /// Attempts per event before it is recorded as failed (Partner Center: 10).
    pub max_attempts: u32,
    /// Delay before the second attempt, in milliseconds; doubles after each failure.
    pub initial_backoff_ms: u64,
    /// Upper bound of the delay between attempts, in milliseconds.
    pub max_backoff_ms: u64,
    /// Per-attempt timeout, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            max_attempts: 10,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 60_000,
            timeout_ms: 10_000,
        }
    }
}

/// Who makes a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Actor {
    /// The integration under test, through a service's API.
    Api,
    /// A person (or Microsoft), through the admin API: "as a user would".
    User,
}

/// Counters that must keep increasing across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Counters {
    /// Dataverse row version (weak eTags, change tracking).
    pub(crate) dataverse_version: u64,
    /// Salesforce record number (ids).
    pub(crate) salesforce_record: u64,
    /// Partner Center eTag sequence.
    pub(crate) partner_center_etag: u64,
}

/// Every record and setting; lives behind the sandbox's mutex.
#[derive(Debug, Default)]
pub(crate) struct Core {
    pub(crate) settings: Settings,
    pub(crate) referrals: BTreeMap<String, Value>,
    pub(crate) registration: Option<Value>,
    pub(crate) validation_events: BTreeMap<String, Value>,
    pub(crate) dataverse: BTreeMap<String, Table>,
    pub(crate) tombstones: Vec<Tombstone>,
    pub(crate) salesforce: BTreeMap<String, BTreeMap<String, Map<String, Value>>>,
    pub(crate) cursors: HashMap<String, Cursor>,
    pub(crate) counters: Counters,
    pub(crate) stamps: Stamps,
    pub(crate) salesforce_api_used: u64,
    pub(crate) tokens: HashMap<String, Token>,
    pub(crate) deliveries: VecDeque<Delivery>,
    pub(crate) requests: RequestLog,
    pub(crate) faults: Faults,
    /// True while a seed is applied: references to records the seed does not hold are
    /// kept, and Partner Center's co-sell requirements are not checked (seeds describe
    /// existing data, not requests).
    pub(crate) seeding: bool,
    persistent: bool,
    pending: Vec<StoreOp>,
}

/// Store namespaces.
pub(crate) mod ns {
    /// Referrals by id.
    pub(crate) const REFERRAL: &str = "referral";
    /// The webhook registration (key `current`).
    pub(crate) const REGISTRATION: &str = "registration";
    /// Test events by correlation id.
    pub(crate) const VALIDATION: &str = "validation";
    /// Dataverse tombstones by version.
    pub(crate) const TOMBSTONE: &str = "dataverse_tombstone";
    /// Counters and usage (keys `counters`, `salesforce_api_used`).
    pub(crate) const META: &str = "meta";
    /// Access and refresh tokens.
    pub(crate) const TOKEN: &str = "token";
    /// The signing key (key `pkcs8`).
    pub(crate) const CERT: &str = "cert";

    /// Dataverse rows of one entity.
    pub(crate) fn dataverse(entity: &str) -> String {
        format!("dataverse:{entity}")
    }

    /// Salesforce records of one sObject.
    pub(crate) fn salesforce(sobject: &str) -> String {
        format!("salesforce:{sobject}")
    }
}

impl Core {
    /// An empty core; `persistent` makes writes produce store operations.
    pub(crate) fn new(settings: Settings, persistent: bool) -> Self {
        Core {
            settings,
            persistent,
            ..Core::default()
        }
    }

    /// Queues a durable write; the value is serialized only when the state is kept.
    pub(crate) fn persist<T: Serialize + ?Sized>(&mut self, namespace: &str, key: &str, value: &T) {
        if self.persistent {
            self.pending.push(StoreOp::Put {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
                value: serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()),
            });
        }
    }

    /// True when writes are kept across restarts (they produce store operations).
    pub(crate) fn persistent(&self) -> bool {
        self.persistent
    }

    /// Queues a durable delete.
    pub(crate) fn unpersist(&mut self, namespace: &str, key: &str) {
        if self.persistent {
            self.pending.push(StoreOp::Delete {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
            });
        }
    }

    /// Queues the counters.
    pub(crate) fn persist_counters(&mut self) {
        let counters = self.counters.clone();
        self.persist(ns::META, "counters", &counters);
    }

    /// The next Dataverse row version.
    pub(crate) fn next_dataverse_version(&mut self) -> u64 {
        self.counters.dataverse_version += 1;
        self.persist_counters();
        self.counters.dataverse_version
    }

    /// Removes every record, registration, log, delivery and fault (tokens, counters and
    /// settings stay).
    pub(crate) fn clear_data(&mut self) {
        self.referrals.clear();
        self.registration = None;
        self.validation_events.clear();
        self.dataverse.clear();
        self.tombstones.clear();
        self.salesforce.clear();
        self.cursors.clear();
        self.salesforce_api_used = 0;
        self.deliveries.clear();
        self.requests.clear();
        self.faults.clear();
        if self.persistent {
            self.pending.push(StoreOp::ClearData);
        }
    }

    /// Loads stored rows (at start, before serving).
    pub(crate) fn load(&mut self, rows: Vec<(String, String, String)>) {
        for (namespace, key, text) in rows {
            let Ok(value) = serde_json::from_str::<Value>(&text) else {
                tracing::warn!(namespace, key, "skipping an unreadable stored row");
                continue;
            };
            self.load_one(&namespace, key, value);
        }
    }

    fn load_one(&mut self, namespace: &str, key: String, value: Value) {
        match namespace {
            ns::REFERRAL => {
                self.referrals.insert(key, value);
            }
            ns::REGISTRATION => self.registration = Some(value),
            ns::VALIDATION => {
                self.validation_events.insert(key, value);
            }
            ns::TOMBSTONE => {
                if let Ok(t) = serde_json::from_value(value) {
                    self.tombstones.push(t);
                }
            }
            ns::META if key == "counters" => {
                self.counters = serde_json::from_value(value).unwrap_or_default();
            }
            ns::META if key == "salesforce_api_used" => {
                self.salesforce_api_used = value.as_u64().unwrap_or(0);
            }
            ns::TOKEN => {
                if let Ok(token) = serde_json::from_value(value) {
                    self.tokens.insert(key, token);
                }
            }
            other => {
                if let Some(entity) = other.strip_prefix("dataverse:") {
                    if let Ok(row) = serde_json::from_value(value) {
                        self.dataverse
                            .entry(entity.to_owned())
                            .or_default()
                            .insert(key, row);
                    }
                } else if let Some(sobject) = other.strip_prefix("salesforce:")
                    && let Value::Object(record) = value
                {
                    self.salesforce
                        .entry(sobject.to_owned())
                        .or_default()
                        .insert(key, record);
                }
            }
        }
        self.tombstones.sort_by_key(|t| t.version);
    }

    /// How many durable writes are queued (for [`Core::rollback_pending`]).
    pub(crate) fn pending_mark(&self) -> usize {
        self.pending.len()
    }

    /// Drops durable writes queued after `mark` (an all-or-none batch that failed).
    pub(crate) fn rollback_pending(&mut self, mark: usize) {
        self.pending.truncate(mark);
    }

    fn take_pending(&mut self) -> Vec<StoreOp> {
        std::mem::take(&mut self.pending)
    }
}

/// The shared sandbox state every service router works on. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<Shared>,
}

/// What the routers share.
pub(crate) struct Shared {
    pub(crate) core: Mutex<Core>,
    pub(crate) urls: SandboxUrls,
    pub(crate) store: Store,
    pub(crate) signer: Signer,
    pub(crate) http: reqwest::Client,
    pub(crate) max_body_bytes: usize,
    pub(crate) seeds: Vec<Seed>,
    /// Set to true to stop the listeners and pending deliveries.
    pub(crate) stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("urls", &self.inner.urls)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Runs `f` with the core locked, then hands queued durable writes to the store.
    pub(crate) fn with_core<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let (result, ops) = {
            let mut core = self
                .inner
                .core
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let result = f(&mut core);
            (result, core.take_pending())
        };
        self.inner.store.send(ops);
        result
    }

    /// The base URLs of the services.
    pub fn urls(&self) -> &SandboxUrls {
        &self.inner.urls
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        self.with_core(|core| core.settings.clone())
    }

    /// The configured maximum request body size.
    pub(crate) fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }

    /// A summary for `GET /_sandbox`.
    pub(crate) fn describe(&self) -> Value {
        let counts = self.with_core(|core| {
            let dataverse: Map<String, Value> = core
                .dataverse
                .iter()
                .map(|(k, v)| (k.clone(), json!(v.len())))
                .collect();
            let salesforce: Map<String, Value> = core
                .salesforce
                .iter()
                .map(|(k, v)| (k.clone(), json!(v.len())))
                .collect();
            json!({
                "partner_center": {"referrals": core.referrals.len(),
                                   "webhook_registered": core.registration.is_some()},
                "dataverse": dataverse,
                "salesforce": salesforce,
            })
        });
        json!({
            "urls": self.inner.urls,
            "credentials": super::Credentials::sandbox(),
            "certificate_url": self.certificate_url(),
            "records": counts,
            "settings": self.settings(),
        })
    }

    /// Where the webhook signing certificate is served (DER).
    pub fn certificate_url(&self) -> String {
        format!("{}/_sandbox/certificate.cer", self.inner.urls.admin)
    }

    /// The headers the sandbox sends with a webhook whose body is `body`
    /// (`Authorization: Signature …`, certificate URL, algorithm): what the
    /// service benchmark uses to drive signed events at a chosen rate.
    pub fn webhook_headers(&self, body: &[u8]) -> Result<Vec<(&'static str, String)>, String> {
        let signature = self.inner.signer.sign(body)?;
        Ok(vec![
            (
                "content-type",
                "application/json; charset=utf-8".to_string(),
            ),
            ("authorization", format!("Signature {signature}")),
            ("x-ms-certificate-url", self.certificate_url()),
            ("x-ms-signature-algorithm", "rsa-sha256".to_string()),
        ])
    }
}
