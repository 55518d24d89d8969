//! Logs and traces: the `tracing` subscriber (text or JSON logs on stderr) and, when an OTLP
//! endpoint is configured, OpenTelemetry export of every span over OTLP/HTTP (protobuf), with W3C
//! trace context read from request headers and carried across replicas.
//!
//! Call [`init`] before the Tokio runtime starts (the exporter's HTTP client is a blocking one,
//! run by the batch processor on its own thread), and [`Telemetry::shutdown`] after it ends, so
//! that the last spans are flushed.

use std::collections::HashMap;
use std::io::IsTerminal;

use anyhow::Context as _;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use shoal_core::engine::trace::{Propagator, set_propagator};
use tracing::{Level, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{FilterExt, LevelFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::cli::LogFormat;

/// `service.name` of every exported span.
pub const SERVICE_NAME: &str = "shoal";
/// The resource attribute that names the replica (also `service.instance.id`).
pub const NODE_ATTRIBUTE: &str = "shoal.node";

/// The spans opened for every request (transport and engine), kept out of logs at `info`.
const PER_REQUEST_SPANS: [&str; 2] = ["http.request", "mcp.operation"];

/// What must be flushed at exit.
#[must_use = "call shutdown() at exit to flush the last spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter (a no-op without one). Call it outside the runtime.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("shoal: flushing traces failed: {error}");
        }
    }
}

/// Installs the global subscriber: logs in `format` filtered by SHOAL_LOG or RUST_LOG (default
/// `info`), plus OTLP export to `otlp_endpoint` (the base URL; spans go to `/v1/traces`).
pub fn init(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
    node: &str,
) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_env("SHOAL_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // The per-request spans are for traces. Logs show them only when debugging: formatting
    // their fields for every request cost a fifth of a replica's CPU at `info` (perf, echo).
    let max_level = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let debugging = max_level >= LevelFilter::DEBUG;
    // The filter functions carry level hints: without them the subscriber's maximum level is
    // TRACE, and so is the `log` bridge's, and then fred formats and forwards its trace lines
    // on every command only for them to be dropped (14 per `tools/call` on Redis, about
    // 20k instructions of 144k; callgrind).
    let filter = filter.and(
        filter_fn(move |meta| {
            debugging || !(meta.is_span() && PER_REQUEST_SPANS.contains(&meta.name()))
        })
        .with_max_level_hint(max_level),
    );
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = match format {
        LogFormat::Text => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
    };
    let provider = otlp_endpoint
        .map(|endpoint| tracer_provider(endpoint, node))
        .transpose()?;
    let mut layers = vec![fmt];
    // A `None` layer would count as one that wants every span, so only real layers are added.
    if let Some(provider) = &provider {
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SERVICE_NAME))
            .with_tracked_inactivity(false)
            // Shoal's own spans and events, whatever the log filter says.
            .with_filter(
                filter_fn(|meta| {
                    meta.target().starts_with("shoal") && *meta.level() <= Level::INFO
                })
                .with_max_level_hint(LevelFilter::INFO),
            );
        layers.push(otel.boxed());
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .context("installing the tracing subscriber")?;
    if provider.is_some() {
        set_propagator(W3c(TraceContextPropagator::new()));
    }
    Ok(Telemetry { provider })
}

fn tracer_provider(endpoint: &str, node: &str) -> anyhow::Result<SdkTracerProvider> {
    let url = traces_url(endpoint);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .build()
        .with_context(|| format!("setting up the OTLP exporter for {url}"))?;
    let resource = Resource::builder()
        .with_service_name(SERVICE_NAME)
        .with_attribute(KeyValue::new("service.instance.id", node.to_owned()))
        .with_attribute(KeyValue::new(NODE_ATTRIBUTE, node.to_owned()))
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL: spans go to `<base>/v1/traces`. A URL that
/// already names the traces path is kept.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim().trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// W3C trace context on `tracing` spans, through the OpenTelemetry layer.
struct W3c(TraceContextPropagator);

impl Propagator for W3c {
    fn set_parent(&self, span: &Span, get: &dyn Fn(&str) -> Option<String>) {
        let carrier: HashMap<String, String> = self
            .0
            .fields()
            .filter_map(|name| get(name).map(|value| (name.to_owned(), value)))
            .collect();
        if carrier.is_empty() {
            return;
        }
        let parent = self.0.extract(&carrier);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }

    fn traceparent(&self, span: &Span) -> Option<String> {
        let context = span.context();
        if !context.span().span_context().is_valid() {
            return None;
        }
        let mut carrier = HashMap::new();
        self.0.inject_context(&context, &mut carrier);
        carrier.remove("traceparent")
    }

    fn add_link(&self, span: &Span, traceparent: &str) {
        let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        let remote: Context = self.0.extract(&carrier);
        let remote = remote.span().span_context().clone();
        if remote.is_valid() {
            span.add_link(remote);
        }
    }

    fn set_name(&self, span: &Span, name: String) {
        span.context().span().update_name(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_a_base_url() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
