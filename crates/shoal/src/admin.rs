//! The admin listener's routes: liveness, readiness (the host answers, the replica is not
//! draining) and the Prometheus exposition of every crate's metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use shoal_core::host::SharedHost;

/// Bound on the session host's answer to a readiness probe.
const READYZ_PING_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) host: SharedHost,
    pub(crate) draining: Arc<AtomicBool>,
    /// `None` when the process already had another metrics recorder (an embedder's).
    pub(crate) metrics: Option<PrometheusHandle>,
}

/// `/healthz`, `/readyz` and `/metrics`.
pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// Gauge: 1, labelled with the `version` and the `node` id of this replica.
pub(crate) const BUILD_INFO: &str = "shoal_build_info";
/// Gauge: 1 while this replica drains (not ready, closing streams), else 0.
pub(crate) const DRAINING: &str = "shoal_draining";

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
pub(crate) fn install_metrics() -> Option<PrometheusHandle> {
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
