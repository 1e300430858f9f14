//! Startup shared by `main` and the tests: [`Application::build`] opens the database and
//! binds the listeners (port 0 in tests) and reports their addresses; [`Application::run`]
//! serves until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use rollcall_store::Store;
use rollcall_web::{AppServices, AppState};
use tokio::net::TcpListener;

use crate::settings::Settings;

pub struct Application {
    store: Store,
    http: TcpListener,
    http_addr: SocketAddr,
    sftp: rollcall_sftp::SftpServer,
    sftp_addr: SocketAddr,
    engine: rollcall_sync::Engine,
    queue: rollcall_sync::queue::Queue,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    scim: rollcall_web::scim::ScimSettings,
    secure_cookies: bool,
    sign_ins: Arc<rollcall_signin::Guard>,
    trusted_proxies: rollcall_domain::client_address::TrustedProxies,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        let store = crate::open_store(settings).await?;
        let http = TcpListener::bind(settings.http)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", settings.http))?;
        let http_addr = http.local_addr()?;
        let engine = crate::engine(store.clone(), settings);
        // One guard for the admin surfaces and SFTP: one bound on password hashing.
        let sign_ins = Arc::new(
            rollcall_signin::Guard::new(settings.sign_in.clone())
                .context("while setting up sign-in protection")?,
        );
        let sftp = rollcall_sftp::SftpServer::bind(
            store.clone(),
            &rollcall_sftp::SftpSettings {
                addr: settings.sftp,
                data_dir: settings.data_dir.clone(),
                max_bytes: settings.limits.max_bytes,
                sign_ins: sign_ins.clone(),
            },
            engine.clone(),
        )
        .await?;
        let sftp_addr = sftp.local_addr()?;
        tracing::info!(fingerprint = sftp.host_key_fingerprint(), "SFTP host key");
        let queue = rollcall_sync::queue::Queue::new(
            engine.clone(),
            rollcall_sync::queue::QueueSettings {
                node: node_id(&settings.data_dir)?,
                workers: settings.run_workers,
                work_dir: settings.data_dir.join("work"),
                retention: settings.file_retention,
            },
        );
        // One recorder per process; a second build (tests) reuses a fresh local handle.
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        Ok(Application {
            store,
            http,
            http_addr,
            sftp,
            sftp_addr,
            engine,
            queue,
            metrics,
            scim: rollcall_web::scim::ScimSettings {
                schema: rollcall_scim::schema::UserSchema::new(&settings.scim_extension_urn),
            },
            secure_cookies: settings.secure_cookies,
            sign_ins,
            trusted_proxies: settings.trusted_proxies.clone(),
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn sftp_addr(&self) -> SocketAddr {
        self.sftp_addr
    }

    /// Serve until `shutdown` completes, then finish in-flight requests and close the database.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = AppState::new(AppServices {
            store: self.store.clone(),
            metrics: self.metrics,
            scim: self.scim,
            tokens: rollcall_web::scim::TokenCache::default(),
            admin: rollcall_web::api::AdminSettings::new(
                self.secure_cookies,
                self.sign_ins,
                self.trusted_proxies,
            ),
            engine: self.engine,
        });
        let app = rollcall_web::app(state);
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let http = axum::serve(
            self.http,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(app),
        )
        .with_graceful_shutdown(stopped(stop.clone()));
        let (http, sftp, runs) = tokio::join!(
            async { http.await.context("HTTP server failed") },
            self.sftp.run(stopped(stop.clone())),
            async { self.queue.run(stop).await.context("the run queue failed") },
        );
        http?;
        sftp?;
        runs?;
        self.store.close().await;
        Ok(())
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// This node's identity in the run queue, kept in the data directory so that a restarted node
/// recognises the runs it held.
fn node_id(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path)
        && !id.trim().is_empty()
    {
        return Ok(id.trim().to_owned());
    }
    crate::private_dir(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let id = rollcall_store::new_id();
    std::fs::write(&path, &id).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}
