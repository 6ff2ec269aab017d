//! Listeners: one per service on the loopback interface (so hosts differ as the real
//! ones do), served by axum with graceful shutdown.

use std::io;
use std::net::{IpAddr, SocketAddr};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::SandboxUrls;
use super::error::Service;
use super::state::Sandbox;
use super::{admin, dataverse, identity, partner_center, salesforce, webhooks};

/// The bound listeners, by service.
pub(crate) struct Listeners {
    admin: TcpListener,
    partner_center: TcpListener,
    partner_center_webhooks: TcpListener,
    dataverse: TcpListener,
    salesforce: TcpListener,
    login: TcpListener,
}

fn url(listener: &TcpListener) -> io::Result<String> {
    let address: SocketAddr = listener.local_addr()?;
    Ok(format!("http://{address}"))
}

/// Binds the admin listener on `port` (0 = any free port) and the others on free ports.
pub(crate) async fn bind(host: IpAddr, port: u16) -> io::Result<(Listeners, SandboxUrls)> {
    let admin = TcpListener::bind((host, port)).await?;
    let free = || TcpListener::bind((host, 0));
    let listeners = Listeners {
        admin,
        partner_center: free().await?,
        partner_center_webhooks: free().await?,
        dataverse: free().await?,
        salesforce: free().await?,
        login: free().await?,
    };
    let urls = SandboxUrls {
        partner_center: url(&listeners.partner_center)?,
        partner_center_webhooks: url(&listeners.partner_center_webhooks)?,
        dataverse: url(&listeners.dataverse)?,
        salesforce: url(&listeners.salesforce)?,
        login: url(&listeners.login)?,
        admin: url(&listeners.admin)?,
    };
    Ok((listeners, urls))
}

/// Starts serving every listener until the shutdown signal.
pub(crate) fn serve(
    sandbox: &Sandbox,
    listeners: Listeners,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let services: [(Service, TcpListener, Router); 6] = [
        (
            Service::Admin,
            listeners.admin,
            admin::router(sandbox.clone()),
        ),
        (
            Service::PartnerCenter,
            listeners.partner_center,
            partner_center::router(sandbox.clone()),
        ),
        (
            Service::PartnerCenterWebhooks,
            listeners.partner_center_webhooks,
            webhooks::router(sandbox.clone()),
        ),
        (
            Service::Dataverse,
            listeners.dataverse,
            dataverse::router(sandbox.clone()),
        ),
        (
            Service::Salesforce,
            listeners.salesforce,
            salesforce::router(sandbox.clone()),
        ),
        (
            Service::Login,
            listeners.login,
            identity::router(sandbox.clone()),
        ),
    ];
    services
        .into_iter()
        .map(|(service, listener, router)| {
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let signal = async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                };
                if let Err(error) = axum::serve(listener, router)
                    .with_graceful_shutdown(signal)
                    .await
                {
                    tracing::error!(service = service.as_str(), %error, "sandbox listener failed");
                }
            })
        })
        .collect()
}
