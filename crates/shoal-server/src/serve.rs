//! `shoal serve`: wires the host, the engine, the transport and the admin listener together,
//! and drains on SIGTERM.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use shoal_auth::Auth;
use shoal_core::engine::{Engine, EngineConfig};
use shoal_core::handler::Handlers;
use shoal_core::host::{HostError, MemoryHost, MemoryHostConfig, SharedHost};
use shoal_core::ids::NodeId;
use shoal_redis::{RedisHost, RedisHostConfig};
use shoal_transport::TransportConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, SessionHostKind};
use crate::conn::{self, ConnLimits};
use crate::tools;

/// Runs the server with the tool sets named in the configuration until SIGTERM or Ctrl-C,
/// then drains.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let handlers = config
        .tools
        .iter()
        .filter_map(|name| tools::by_name(name))
        .fold(Handlers::new(), Handlers::merge);
    run_with(config, handlers).await
}

/// Runs the server with your own handlers (`config.tools` is ignored) until SIGTERM or Ctrl-C,
/// then drains. This is how a crate that writes its own tools embeds Shoal.
pub async fn run_with(config: Config, handlers: Handlers) -> anyhow::Result<()> {
    let node = node_id(&config);
    let metrics = install_metrics();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "node" => node.to_string())
        .set(1.0);
    metrics::gauge!(DRAINING).set(0.0);
    let host = session_host(&config, node.clone()).await?;
    let engine_config = EngineConfig {
        max_sessions_per_principal: config.max_sessions_per_principal,
        ..EngineConfig::default()
    };
    let engine = Engine::new(host.clone(), handlers, engine_config);

    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if config.unauthenticated_exposed {
        tracing::warn!(
            listen = %config.listen,
            "AUTHENTICATION IS OFF on a non-loopback address (--allow-unauthenticated): anyone who \
             can reach it can use every tool; make sure a gateway in front authenticates clients"
        );
    }
    let drain = CancellationToken::new();
    let mut transport = TransportConfig {
        allowed_hosts: config.allowed_hosts.clone(),
        allowed_origins: config.allowed_origins.clone(),
        max_body_bytes: config.max_body_bytes,
        max_header_bytes: config.max_header_bytes,
        max_json_depth: config.max_json_depth,
        max_streams_per_session: config.max_streams_per_session,
        max_in_flight_per_session: config.max_in_flight_per_session,
        rate_limit: config.rate_limit,
        ..TransportConfig::default()
    };
    // The metadata and challenges name the path the endpoint really has.
    let auth = Auth::start(config.auth.clone(), &config.public_url, &transport.path)
        .await
        .context("starting authentication")?;
    transport.tool_scopes = auth.tool_scopes();
    let drain_engine = engine.clone();
    // The Host/Origin guard answers before authentication, so that a rebound request gets its
    // 403 and not a challenge. The well-known documents are public and readable from any
    // origin (CORS), so only the Host rule holds there. Metrics and tracing are outermost, so
    // that every refusal is measured and traced.
    let host_guard = shoal_transport::HostGuardLayer::new(&transport);
    let public = auth.routes().layer(host_guard.clone().host_only());
    let app = shoal_transport::router(engine, transport, drain.clone())
        .layer(auth.layer())
        .layer(host_guard)
        .merge(public)
        .layer(axum::middleware::from_fn(
            shoal_transport::metrics::track_http,
        ))
        .layer(axum::middleware::from_fn(
            shoal_transport::trace::trace_http,
        ));
    let draining = Arc::new(AtomicBool::new(false));
    let admin = admin_router(AdminState {
        host,
        draining: draining.clone(),
        metrics,
    });

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("binding {}", config.admin_listen))?;
    tracing::info!(
        node = %node,
        mcp = %format!("http://{}{}", listener.local_addr()?, shoal_transport::config::DEFAULT_PATH),
        public_url = %config.public_url,
        admin = %admin_listener.local_addr()?,
        tools = %config.tools.join(","),
        auth = auth_mode(&config.auth),
        "shoal is serving"
    );

    let shutdown = CancellationToken::new();
    let limits = ConnLimits {
        max_header_bytes: config.max_header_bytes,
        idle_timeout: config.idle_connection_timeout,
        write_timeout: config.write_timeout,
    };
    let server = conn::serve(listener, app, limits, shutdown.clone());
    let admin_server = axum::serve(admin_listener, admin)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let server = tokio::spawn(server);
    let admin_server = tokio::spawn(async move { admin_server.await });

    wait_for_signal().await;
    // Not ready first, and keep serving for the shutdown delay, so that the load balancer stops
    // sending new requests before this replica stops accepting them.
    draining.store(true, Ordering::SeqCst);
    metrics::gauge!(DRAINING).set(1.0);
    tracing::info!(delay = ?config.shutdown_delay, "draining: reporting not ready");
    tokio::time::sleep(config.shutdown_delay).await;
    tracing::info!("draining: closing streams, finishing in-flight requests");
    drain.cancel();
    shutdown.cancel();
    let finished = tokio::time::timeout(config.drain_timeout, async {
        let served = server.await;
        // Handlers whose clients went away still write their replies to the logs, where a
        // client that reconnects to another replica reads them.
        drain_engine.wait_idle().await;
        served
    })
    .await;
    match finished {
        Ok(result) => result.context("server task")?,
        Err(_) => tracing::warn!(
            timeout = ?config.drain_timeout,
            in_flight = drain_engine.in_flight(),
            "drain timed out; in-flight requests were cut"
        ),
    }
    admin_server.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Connects the configured session host. Redis is retried until it answers: a replica that
/// starts before its Redis waits for it instead of crash-looping.
async fn session_host(config: &Config, node: NodeId) -> anyhow::Result<SharedHost> {
    match &config.session_host {
        SessionHostKind::Memory => Ok(Arc::new(MemoryHost::new(
            node,
            MemoryHostConfig {
                idle_timeout: config.session_idle_timeout,
                max_lifetime: config.session_max_lifetime,
                event_retention: config.event_retention,
                ..MemoryHostConfig::default()
            },
        ))),
        SessionHostKind::Redis { url, key_prefix } => {
            let mut redis = RedisHostConfig::new(url.clone(), node);
            redis.key_prefix = key_prefix.clone();
            redis.idle_timeout = config.session_idle_timeout;
            redis.max_lifetime = config.session_max_lifetime;
            redis.event_retention = config.event_retention;
            let mut delay = Duration::from_millis(250);
            loop {
                match RedisHost::connect(redis.clone()).await {
                    Ok(host) => return Ok(Arc::new(host)),
                    Err(HostError::Unavailable(detail)) => {
                        tracing::warn!(%detail, retry_in = ?delay, "waiting for Redis");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                    Err(error) => anyhow::bail!("cannot use the Redis session host: {error}"),
                }
            }
        }
    }
}

/// Bound on the session host's answer to a readiness probe.
const READYZ_PING_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
struct AdminState {
    host: SharedHost,
    draining: Arc<AtomicBool>,
    /// `None` when the process already had another metrics recorder (an embedder's).
    metrics: Option<PrometheusHandle>,
}

fn admin_router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// Gauge: 1, labelled with the `version` and the `node` id of this replica.
const BUILD_INFO: &str = "shoal_build_info";
/// Gauge: 1 while this replica drains (not ready, closing streams), else 0.
const DRAINING: &str = "shoal_draining";

/// Buckets of the HTTP and Redis latency histograms: an RPC service, from 0.5 ms to 10 s (MCP
/// operations, which may wait minutes on a user, have their own up to 300 s).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the session duration: from a second to a day (OpenTelemetry's advice, which stops
/// at 300 s, would put most sessions in `+Inf`).
const SESSION_BUCKETS: [f64; 13] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
];
/// How often the recorder drops histogram samples already rendered.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder once per process (with an upkeep task on the current
/// runtime) and describes every metric. `None` when another recorder was installed first.
fn install_metrics() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = match prometheus_builder().and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => handle,
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed; /metrics is off");
                    return None;
                }
            };
            describe_metrics();
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
                loop {
                    ticks.tick().await;
                    upkeep.run_upkeep();
                }
            });
            Some(handle)
        })
        .clone()
}

fn prometheus_builder() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    use shoal_core::engine::metrics::{OPERATION_BUCKETS, OPERATION_DURATION};
    let latency = shoal_transport::metrics::HISTOGRAMS
        .into_iter()
        .chain(shoal_redis::metrics::HISTOGRAMS);
    let mut builder = PrometheusBuilder::new();
    for name in latency {
        builder = builder.set_buckets_for_metric(Matcher::Full(name.into()), &LATENCY_BUCKETS)?;
    }
    builder
        .set_buckets_for_metric(Matcher::Full(OPERATION_DURATION.into()), &OPERATION_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(shoal_core::engine::metrics::SESSION_DURATION.into()),
            &SESSION_BUCKETS,
        )
}

fn describe_metrics() {
    shoal_transport::metrics::describe();
    shoal_core::engine::metrics::describe();
    shoal_redis::metrics::describe();
    metrics::describe_gauge!(
        BUILD_INFO,
        "Always 1; the labels say which version runs as which node"
    );
    metrics::describe_gauge!(
        DRAINING,
        "1 while this replica drains after SIGTERM (not ready, closing streams), else 0"
    );
}

/// Prometheus text exposition of every metric of this replica.
async fn metrics_text(State(state): State<AdminState>) -> axum::response::Response {
    match &state.metrics {
        Some(handle) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are off\n").into_response(),
    }
}

/// The process is alive.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the session host answers and the process is not draining.
async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n");
    }
    // Answer well inside a probe's timeout even when the store hangs.
    match tokio::time::timeout(READYZ_PING_TIMEOUT, state.host.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n"),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "session host unreachable\n",
        ),
    }
}

async fn wait_for_signal() {
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
    }
}

/// This process's node id: [`Config::node_id`] as resolved, or the host name plus a random
/// suffix (the binary resolves it once, before telemetry starts, and stores it in the
/// configuration).
pub fn node_id(config: &Config) -> NodeId {
    match &config.node_id {
        Some(id) => NodeId::new(id),
        None => NodeId::with_random_suffix(&hostname()),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "shoal".to_owned())
}
