//! The assembly: [`Builder`] turns settings, handlers and an optional host or authenticator
//! into a [`Shoal`]: the MCP router with its well-known routes, the admin router, the engine
//! and the drain, in the one layer order every deployment uses.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use shoal_auth::Auth;
use shoal_core::engine::{Engine, EngineConfig};
use shoal_core::handler::Handlers;
use shoal_core::host::{HostError, MemoryHost, MemoryHostConfig, SharedHost};
use shoal_core::ids::NodeId;
use shoal_redis::{RedisHost, RedisHostConfig};
use shoal_transport::auth::{AuthLayer, Authenticator};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::error::Error;
use crate::listener::{self, ConnLimits};
use crate::settings::{HostSettings, Settings};

/// Builds a [`Shoal`]. Start from [`Shoal::builder`].
#[derive(Default)]
pub struct Builder {
    settings: Settings,
    handlers: Handlers,
    host: Option<SharedHost>,
    authenticator: Option<Arc<dyn Authenticator>>,
    engine: EngineConfig,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("settings", &self.settings)
            .field("authenticator", &self.authenticator)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Every setting at once (from [`Settings::from_env`] or
    /// [`Sources`](crate::settings::Sources)); the default is loopback, memory host, no
    /// authentication.
    pub fn settings(mut self, settings: Settings) -> Builder {
        self.settings = settings;
        self
    }

    /// The tools, resources, prompts and completions served.
    pub fn handlers(mut self, handlers: Handlers) -> Builder {
        self.handlers = handlers;
        self
    }

    /// A host you built (your own `SessionHost`, or a `RedisHost` with settings of its own),
    /// instead of the one the settings name.
    pub fn host(mut self, host: SharedHost) -> Builder {
        self.host = Some(host);
        self
    }

    /// Sessions in Redis at `url` (`redis://…`, `rediss://…`, `redis-cluster://…`), under the
    /// key prefix the settings name (else the default).
    pub fn redis(mut self, url: impl Into<String>) -> Builder {
        let key_prefix = match &self.settings.host {
            HostSettings::Redis { key_prefix, .. } => key_prefix.clone(),
            HostSettings::Memory => shoal_redis::DEFAULT_KEY_PREFIX.to_owned(),
        };
        self.settings.host = HostSettings::Redis {
            url: url.into(),
            key_prefix,
        };
        self
    }

    /// Your own authenticator, instead of the one the settings name. No well-known routes
    /// are served for it.
    pub fn authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Builder {
        self.authenticator = Some(authenticator);
        self
    }

    /// How the server introduces itself (`serverInfo`, `instructions`). The session limit per
    /// principal and the request-state key ring and lifetime come from the settings.
    pub fn engine(mut self, engine: EngineConfig) -> Builder {
        self.engine = engine;
        self
    }

    /// Serves the operator API (end sessions, refuse principals) on the admin router behind
    /// `token`, as `SHOAL_ADMIN_TOKEN` does for `shoal serve`.
    pub fn admin_token(mut self, token: crate::operator::AdminToken) -> Builder {
        self.settings.admin_token = Some(token);
        self
    }

    /// The endpoint's path (default `/mcp`).
    pub fn path(mut self, path: impl Into<String>) -> Builder {
        self.settings.transport.path = path.into();
        self
    }

    /// Connects the host (waiting for Redis until it answers), starts authentication (in jwt
    /// mode: discovers the issuer and fetches its keys) and assembles the routers.
    ///
    /// # Errors
    ///
    /// A host that refuses its settings, or authentication that cannot start.
    pub async fn build(self) -> Result<Shoal, Error> {
        let Builder {
            settings,
            handlers,
            host,
            authenticator,
            engine,
        } = self;
        let node = settings.node_id.clone();
        let metrics = admin::install_metrics();
        metrics::gauge!(admin::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "node" => node.to_string())
            .set(1.0);
        metrics::gauge!(admin::DRAINING).set(0.0);
        let host = match host {
            Some(host) => host,
            None => connect_host(&settings, node.clone()).await?,
        };
        let engine = Engine::new(
            host.clone(),
            handlers,
            EngineConfig {
                max_sessions_per_principal: settings.sessions.max_per_principal,
                request_state_keys: settings
                    .request_state
                    .keys
                    .clone()
                    .unwrap_or(engine.request_state_keys),
                request_state_ttl: settings.request_state.ttl,
                ..engine
            },
        );
        let mut transport = settings.transport.clone();
        let (auth_layer, well_known) = match authenticator {
            Some(authenticator) => (AuthLayer::new(authenticator), Router::new()),
            None => {
                // The metadata and challenges name the path the endpoint really has.
                // The built-in authorization server keeps its state in the session host.
                let store: Arc<dyn shoal_core::host::KeyValue> = host.clone();
                let auth = Auth::start_with_store(
                    settings.auth.clone(),
                    &settings.public_url,
                    &transport.path,
                    Some(store),
                )
                .await
                .map_err(Error::Auth)?;
                transport.tool_scopes = auth.tool_scopes();
                (auth.layer(), auth.routes())
            }
        };
        let streams = CancellationToken::new();
        // The Host/Origin guard answers before authentication, so that a rebound request gets
        // its 403 and not a challenge. The well-known documents are public and readable from
        // any origin (CORS), so only the Host rule holds there. Metrics and tracing are
        // outermost, so that every refusal is measured and traced.
        let host_guard = shoal_transport::HostGuardLayer::new(&transport);
        let public = well_known.layer(host_guard.clone().host_only());
        let path = transport.path.clone();
        let mcp = shoal_transport::router(engine.clone(), transport, streams.clone())
            .layer(auth_layer)
            .layer(host_guard)
            .merge(public)
            .layer(axum::middleware::from_fn(
                shoal_transport::metrics::track_http,
            ))
            .layer(axum::middleware::from_fn(
                shoal_transport::trace::trace_http,
            ));
        let draining = Arc::new(AtomicBool::new(false));
        let mut admin = admin::router(AdminState {
            host,
            draining: draining.clone(),
            metrics,
        });
        if let Some(token) = settings.admin_token.clone() {
            admin = admin.merge(crate::operator::router(engine.admin(), token));
        }
        Ok(Shoal {
            mcp,
            admin,
            drain: Drain {
                draining,
                streams,
                engine: engine.clone(),
            },
            engine,
            path,
            settings,
        })
    }
}

/// Connects the configured session host. Redis is retried until it answers: a replica that
/// starts before its Redis waits for it instead of crash-looping.
async fn connect_host(settings: &Settings, node: NodeId) -> Result<SharedHost, Error> {
    let sessions = settings.sessions;
    match &settings.host {
        HostSettings::Memory => Ok(Arc::new(MemoryHost::new(
            node,
            MemoryHostConfig {
                idle_timeout: sessions.idle_timeout,
                max_lifetime: sessions.max_lifetime,
                event_retention: sessions.event_retention,
                ..MemoryHostConfig::default()
            },
        ))),
        HostSettings::Redis { url, key_prefix } => {
            let mut redis = RedisHostConfig::new(url.clone(), node);
            redis.key_prefix = key_prefix.clone();
            redis.idle_timeout = sessions.idle_timeout;
            redis.max_lifetime = sessions.max_lifetime;
            redis.event_retention = sessions.event_retention;
            let mut delay = Duration::from_millis(250);
            loop {
                match RedisHost::connect(redis.clone()).await {
                    Ok(host) => return Ok(Arc::new(host)),
                    Err(HostError::Unavailable(detail)) => {
                        tracing::warn!(%detail, retry_in = ?delay, "waiting for Redis");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                    Err(error) => return Err(Error::Host(error)),
                }
            }
        }
    }
}

/// A Shoal server, assembled: serve it with [`Shoal::serve`], or take its routers into your
/// own axum application.
pub struct Shoal {
    mcp: Router,
    admin: Router,
    engine: Engine,
    drain: Drain,
    path: String,
    settings: Settings,
}

impl std::fmt::Debug for Shoal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shoal")
            .field("path", &self.path)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Shoal {
    /// A builder with the default settings and no handlers.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The MCP endpoint and its well-known routes, behind the Host/Origin guard, the
    /// authenticator, metrics and tracing. Serve it with [`Shoal::serve`] (which adds the
    /// connection limits and the peer address authenticators read), or nest it in your app.
    pub fn router(&self) -> Router {
        self.mcp.clone()
    }

    /// `/healthz`, `/readyz` and `/metrics`, for a listener of their own.
    pub fn admin_router(&self) -> Router {
        self.admin.clone()
    }

    /// The engine: its [`Notifier`](shoal_core::handler::Notifier) tells every session of
    /// every replica that a list changed; its host administers sessions.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The drain, for embedders that run their own listeners.
    pub fn drain(&self) -> Drain {
        self.drain.clone()
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Binds the listen and admin addresses of the settings and serves until SIGTERM or
    /// Ctrl-C, then drains.
    ///
    /// # Errors
    ///
    /// An address that cannot be bound, or a listener that failed.
    pub async fn serve(self) -> Result<(), Error> {
        self.serve_until(shutdown_signal()).await
    }

    /// As [`Shoal::serve`], until `signal` completes.
    ///
    /// # Errors
    ///
    /// An address that cannot be bound, or a listener that failed.
    pub async fn serve_until(self, signal: impl Future<Output = ()>) -> Result<(), Error> {
        let listen = self.settings.listen;
        let admin_listen = self.settings.admin_listen;
        let mcp = bind(listen).await?;
        let admin = bind(admin_listen).await?;
        self.serve_on(mcp, admin, signal).await
    }

    /// Serves on listeners you bound, until `signal` completes; then reports not ready, keeps
    /// serving for the shutdown delay, closes streams and waits (up to the drain timeout) for
    /// in-flight requests.
    ///
    /// # Errors
    ///
    /// A listener that failed.
    pub async fn serve_on(
        self,
        mcp: TcpListener,
        admin: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let Shoal {
            mcp: app,
            admin: admin_app,
            engine,
            drain,
            path,
            settings,
        } = self;
        for warning in &settings.warnings {
            tracing::warn!("{warning}");
        }
        if settings.unauthenticated_exposed {
            tracing::warn!(
                listen = %settings.listen,
                "AUTHENTICATION IS OFF on a non-loopback address (--allow-unauthenticated): \
                 anyone who can reach it can use every tool; make sure a gateway in front \
                 authenticates clients"
            );
        }
        let local = mcp.local_addr().map_err(Error::Listener)?;
        tracing::info!(
            node = %settings.node_id,
            mcp = %format!("http://{local}{path}"),
            public_url = %settings.public_url,
            admin = %admin.local_addr().map_err(Error::Listener)?,
            auth = auth_mode(&settings.auth),
            "shoal is serving"
        );
        let shutdown = CancellationToken::new();
        let limits = ConnLimits {
            max_header_bytes: settings.transport.max_header_bytes,
            idle_timeout: settings.connections.idle_timeout,
            write_timeout: settings.connections.write_timeout,
        };
        let server = tokio::spawn(listener::serve(mcp, app, limits, shutdown.clone()));
        let admin_server = tokio::spawn(
            axum::serve(admin, admin_app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future(),
        );

        signal.await;
        // Not ready first, and keep serving for the shutdown delay, so that the load balancer
        // stops sending new requests before this replica stops accepting them.
        drain.start();
        tracing::info!(delay = ?settings.shutdown.delay, "draining: reporting not ready");
        tokio::time::sleep(settings.shutdown.delay).await;
        tracing::info!("draining: closing streams, finishing in-flight requests");
        drain.close_streams();
        shutdown.cancel();
        let finished = tokio::time::timeout(settings.shutdown.drain_timeout, async {
            let served = server.await;
            // Handlers whose clients went away still write their replies to the logs, where a
            // client that reconnects to another replica reads them.
            engine.wait_idle().await;
            served
        })
        .await;
        match finished {
            Ok(result) => result.map_err(Error::Task)?,
            Err(_) => tracing::warn!(
                timeout = ?settings.shutdown.drain_timeout,
                in_flight = engine.in_flight(),
                "drain timed out; in-flight requests were cut"
            ),
        }
        admin_server.abort();
        tracing::info!("stopped");
        Ok(())
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// The drain of one replica: not ready first, then its SSE streams closed (clients resume on
/// another replica), then its in-flight handlers awaited.
#[derive(Clone)]
pub struct Drain {
    draining: Arc<AtomicBool>,
    streams: CancellationToken,
    engine: Engine,
}

impl std::fmt::Debug for Drain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drain")
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

impl Drain {
    /// `/readyz` answers 503 from now on.
    pub fn start(&self) {
        self.draining.store(true, Ordering::SeqCst);
        metrics::gauge!(admin::DRAINING).set(1.0);
    }

    /// Whether [`Drain::start`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Ends every open SSE stream with a `retry` hint; new streams are refused.
    pub fn close_streams(&self) {
        self.streams.cancel();
    }

    /// Waits until no handler runs, or `timeout` passes; `false` on timeout.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.engine.wait_idle())
            .await
            .is_ok()
    }
}

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

fn auth_mode(auth: &shoal_auth::AuthConfig) -> &'static str {
    match auth {
        shoal_auth::AuthConfig::None => "none",
        shoal_auth::AuthConfig::Static(_) => "static",
        shoal_auth::AuthConfig::Jwt(_) => "jwt",
        shoal_auth::AuthConfig::OAuth(_) => "oauth",
    }
}
