//! The sandbox: a local emulator of every service cosync talks to, over real HTTP on
//! 127.0.0.1 — the Microsoft identity platform, Partner Center referrals v1.0 and its
//! webhook registration API with signed event delivery, the Dataverse Web API and the
//! Salesforce REST API — plus an admin API (`/_sandbox/`) to seed records, edit them
//! "as a user would", read the request log and inject faults.
//!
//! Each service listens on its own port so hosts differ as they do for real. Start it
//! in-process with [`start`]; `cosync sandbox` does the same and prints [`SandboxUrls`]
//! as one line of JSON.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cosync::sandbox::SandboxError> {
//! let sandbox = cosync::sandbox::start(cosync::sandbox::SandboxConfig::default()).await?;
//! println!("{}", sandbox.urls().dataverse); // http://127.0.0.1:PORT, + /api/data/v9.2/…
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Each service's router is public (`partner_center::router`, …) for `oneshot` tests
//! against a [`Sandbox`] from [`Sandbox::detached`].

mod admin;
mod auth;
mod body;
mod cert;
pub mod dataverse;
mod delivery;
mod error;
mod faults;
mod front;
pub mod identity;
mod odata;
pub mod partner_center;
mod referral;
mod referral_shape;
mod requests;
pub mod salesforce;
mod seed;
mod server;
mod stamp;
mod state;
mod store;
pub mod webhooks;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use admin::router as admin_router;
pub use auth::{
    CLIENT_ID, CLIENT_SECRET, PASSWORD, REFRESH_TOKEN, SALESFORCE_CLIENT_ID,
    SALESFORCE_CLIENT_SECRET, TENANT_ID, USERNAME,
};
pub use cert::CERTIFICATE_COMMON_NAME;
pub use error::Service;
pub use faults::{FaultKind, FaultRule};
pub use referral::{PARTNER_ORGANIZATION_ID, PARTNER_ORGANIZATION_NAME};
pub use seed::{PartnerCenterSeed, Seed};
pub use state::{DeliveryPolicy, Sandbox, Settings};

use state::{Core, Shared, ns};
use store::Store;

/// The base URL of every service: append the real API paths
/// (`/v1.0/engagements/referrals`, `/webhooks/v1/registration`,
/// `/api/data/v9.2/opportunities`, `/services/data/v62.0/sobjects/Opportunity`,
/// `/{tenant}/oauth2/v2.0/token`, `/services/oauth2/token` on `salesforce`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxUrls {
    /// Partner Center referrals API (`api.partner.microsoft.com`).
    pub partner_center: String,
    /// Partner Center webhook registration API (`api.partnercenter.microsoft.com`).
    pub partner_center_webhooks: String,
    /// Dataverse org (`<org>.crm.dynamics.com`).
    pub dataverse: String,
    /// Salesforce My Domain / instance URL (token endpoint and REST API).
    pub salesforce: String,
    /// Microsoft identity platform (`login.microsoftonline.com`).
    pub login: String,
    /// The sandbox's admin API (`/_sandbox/`).
    pub admin: String,
}

/// The fixed sandbox credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credentials {
    /// Tenant id for the token URL (any tenant is accepted).
    pub tenant_id: &'static str,
    /// Entra app client id (Partner Center, webhooks, Dataverse).
    pub client_id: &'static str,
    /// Entra app client secret.
    pub client_secret: &'static str,
    /// A refresh token that is always valid (delegated Partner Center access).
    pub refresh_token: &'static str,
    /// User name for the password grant.
    pub username: &'static str,
    /// Password for the password grant.
    pub password: &'static str,
    /// Salesforce connected app consumer key.
    pub salesforce_client_id: &'static str,
    /// Salesforce connected app consumer secret.
    pub salesforce_client_secret: &'static str,
}

impl Credentials {
    /// The sandbox's credentials.
    pub fn sandbox() -> Credentials {
        Credentials {
            tenant_id: TENANT_ID,
            client_id: CLIENT_ID,
            client_secret: CLIENT_SECRET,
            refresh_token: REFRESH_TOKEN,
            username: USERNAME,
            password: PASSWORD,
            salesforce_client_id: SALESFORCE_CLIENT_ID,
            salesforce_client_secret: SALESFORCE_CLIENT_SECRET,
        }
    }
}

/// How to start the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Interface to listen on (loopback by default).
    pub host: IpAddr,
    /// Port of the admin listener; 0 = a free port. The other services always take free ports.
    pub port: u16,
    /// SQLite file that keeps records across restarts; `None` = in memory.
    pub state_file: Option<PathBuf>,
    /// Folder of `*.json` seed documents applied to an empty state and on reset.
    pub seed_dir: Option<PathBuf>,
    /// Initial settings (token lifetime, page sizes, limits, delivery policy).
    pub settings: Settings,
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            state_file: None,
            seed_dir: None,
            settings: Settings::default(),
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A listener could not be bound.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    /// The state file could not be opened or read.
    #[error("state file: {0}")]
    State(String),
    /// A seed document is unreadable or invalid.
    #[error("seed: {0}")]
    Seed(String),
    /// The signing key or certificate could not be made.
    #[error("certificate: {0}")]
    Certificate(String),
}

/// A running sandbox. Dropping it stops the listeners; [`SandboxHandle::shutdown`] also
/// waits for them and flushes the state file.
pub struct SandboxHandle {
    sandbox: Sandbox,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("urls", self.urls())
            .finish_non_exhaustive()
    }
}

impl SandboxHandle {
    /// The services' base URLs.
    pub fn urls(&self) -> &SandboxUrls {
        self.sandbox.urls()
    }

    /// The fixed credentials every token endpoint accepts.
    pub fn credentials(&self) -> Credentials {
        Credentials::sandbox()
    }

    /// The shared state (for routers in tests, or direct inspection).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Stops accepting requests, waits for in-flight ones, cancels pending webhook
    /// retries and flushes the state file.
    pub async fn shutdown(mut self) {
        self.sandbox.inner.stop.send_replace(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        }
        self.sandbox.inner.store.close().await;
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.sandbox.inner.stop.send_replace(true);
    }
}

/// Starts every service and returns once they accept connections.
pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    let (listeners, urls) = server::bind(config.host, config.port).await?;
    let sandbox = build(&config, urls).await?;
    let tasks = server::serve(&sandbox, listeners, &sandbox.inner.stop.subscribe());
    tracing::info!(admin = %sandbox.urls().admin, "sandbox ready");
    Ok(SandboxHandle { sandbox, tasks })
}

impl Sandbox {
    /// A sandbox state without listeners, for `oneshot` tests of the routers; `urls` are
    /// what responses and webhook payloads will name.
    pub async fn detached(
        config: SandboxConfig,
        urls: SandboxUrls,
    ) -> Result<Sandbox, SandboxError> {
        build(&config, urls).await
    }
}

async fn build(config: &SandboxConfig, urls: SandboxUrls) -> Result<Sandbox, SandboxError> {
    let (store, rows) = match config.state_file.clone() {
        None => (Store::memory(), Vec::new()),
        Some(path) => tokio::task::spawn_blocking(move || Store::open(&path))
            .await
            .map_err(|e| SandboxError::State(e.to_string()))?
            .map_err(|e| SandboxError::State(e.to_string()))?,
    };
    let seeds = match config.seed_dir.clone() {
        None => Vec::new(),
        Some(dir) => tokio::task::spawn_blocking(move || seed::load_dir(&dir))
            .await
            .map_err(|e| SandboxError::Seed(e.to_string()))?
            .map_err(SandboxError::Seed)?,
    };
    let stored_key = rows
        .iter()
        .find(|(namespace, key, _)| namespace == ns::CERT && key == "pkcs8")
        .and_then(|(_, _, value)| serde_json::from_str::<String>(value).ok())
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok());
    let signer = tokio::task::spawn_blocking(move || match stored_key {
        Some(key) => cert::Signer::from_pkcs8(&key),
        None => cert::Signer::generate(),
    })
    .await
    .map_err(|e| SandboxError::Certificate(e.to_string()))?
    .map_err(SandboxError::Certificate)?;
    let fresh = rows.is_empty();
    let mut core = Core::new(config.settings.clone(), store.is_persistent());
    core.load(rows);
    let key = base64::engine::general_purpose::STANDARD.encode(signer.pkcs8());
    core.persist(ns::CERT, "pkcs8", &json!(key));
    dataverse::seed_currencies(&mut core);
    if fresh {
        for seed in &seeds {
            seed::apply(&mut core, seed).map_err(SandboxError::Seed)?;
        }
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| SandboxError::State(format!("HTTP client: {e}")))?;
    let sandbox = Sandbox {
        inner: Arc::new(Shared {
            core: Mutex::new(core),
            urls,
            store,
            signer,
            http,
            max_body_bytes: config.max_body_bytes,
            seeds,
            stop: watch::channel(false).0,
        }),
    };
    sandbox.with_core(|_| ());
    Ok(sandbox)
}
