//! The summary of a run, three ways: one JSON object (`--json`, the contract `cargo xtask
//! bench` reads), a table for people, and `--report DIR`: an HTML page with the table, a
//! latency histogram and throughput over time, drawn as inline SVG by plotters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};
use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde::Serialize;

use crate::cli::{Options, Scenario};
use crate::error::ErrorKind;
use crate::scenario::{Outcome, SetupFailed, StreamCounts};
use crate::stats::{EventCounts, Latency, Recorder, Second};

/// Bars of the latency histogram.
const HISTOGRAM_BARS: u64 = 40;
/// Size of each chart, in pixels.
const CHART_SIZE: (u32, u32) = (860, 380);

/// Everything a run reports. The fields up to `timeline` are the JSON contract; the rest
/// were added after it.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) scenario: &'static str,
    pub(crate) urls: Vec<String>,
    pub(crate) concurrency: usize,
    pub(crate) sessions: usize,
    pub(crate) duration_secs: f64,
    pub(crate) operations: u64,
    pub(crate) ok: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) throughput_per_sec: f64,
    pub(crate) latency_ms: Latency,
    pub(crate) streams: StreamCounts,
    pub(crate) events: EventCounts,
    pub(crate) timeline: Vec<Second>,
    /// The first message of each error kind.
    pub(crate) error_examples: BTreeMap<String, String>,
    /// What else the reader should know (a server that refuses DELETE, say).
    pub(crate) notes: Vec<String>,
    /// mrtr: the requests its operations took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mrtr: Option<Rounds>,
    /// Why nothing was measured, when setup failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) setup_error: Option<String>,
}

/// The rounds (requests) of multi round-trip operations.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Rounds {
    pub(crate) rounds: u64,
    /// Over every operation, failed ones included.
    pub(crate) rounds_per_operation: f64,
}

// === impl Summary ===

impl Summary {
    pub(crate) fn new(scenario: Scenario, options: &Options, outcome: &Outcome) -> Self {
        let recorder = &outcome.recorder;
        let duration_secs = outcome.measured.as_secs_f64();
        let operations = recorder.ok + recorder.failed_operations();
        let throughput_per_sec = if duration_secs > 0.0 {
            recorder.ok as f64 / duration_secs
        } else {
            0.0
        };
        Self {
            duration_secs,
            operations,
            throughput_per_sec,
            sessions: outcome.sessions,
            streams: outcome.streams,
            notes: outcome.notes.clone(),
            mrtr: (scenario == Scenario::Mrtr).then(|| Rounds {
                rounds: recorder.events.rounds,
                rounds_per_operation: if operations > 0 {
                    recorder.events.rounds as f64 / operations as f64
                } else {
                    0.0
                },
            }),
            ..Self::from_recorder(scenario, options, recorder)
        }
    }

    pub(crate) fn failed(scenario: Scenario, options: &Options, failed: &SetupFailed) -> Self {
        Self {
            setup_error: Some(failed.message.clone()),
            ..Self::from_recorder(scenario, options, &failed.recorder)
        }
    }

    fn from_recorder(scenario: Scenario, options: &Options, recorder: &Recorder) -> Self {
        Self {
            scenario: scenario.name(),
            urls: options.urls.clone(),
            concurrency: options.concurrency,
            sessions: 0,
            duration_secs: 0.0,
            operations: 0,
            ok: recorder.ok,
            errors: by_key(&recorder.errors),
            throughput_per_sec: 0.0,
            latency_ms: recorder.latency(),
            streams: StreamCounts::default(),
            events: recorder.events,
            timeline: recorder.timeline(),
            error_examples: by_key(&recorder.examples),
            notes: Vec::new(),
            mrtr: None,
            setup_error: None,
        }
    }

    /// No error of any kind, no gap, duplicate or reordering.
    pub(crate) fn passed(&self) -> bool {
        let e = &self.events;
        self.setup_error.is_none()
            && self.errors.is_empty()
            && e.gaps == 0
            && e.duplicates == 0
            && e.out_of_order == 0
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#))
    }

    /// The summary as rows of (what, value).
    fn rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![
            ("scenario".to_owned(), self.scenario.to_owned()),
            ("urls".to_owned(), self.urls.join("\n")),
            (
                "concurrency / sessions".to_owned(),
                format!("{} / {}", self.concurrency, self.sessions),
            ),
            (
                "duration".to_owned(),
                format!("{:.2} s", self.duration_secs),
            ),
            (
                "operations".to_owned(),
                format!(
                    "{} ({} ok, {} failed)",
                    self.operations,
                    self.ok,
                    self.operations - self.ok
                ),
            ),
            (
                "throughput".to_owned(),
                format!("{:.1} ok/s", self.throughput_per_sec),
            ),
        ];
        let l = &self.latency_ms;
        rows.push((
            "latency p50 / p90 / p99".to_owned(),
            format!("{:.3} / {:.3} / {:.3} ms", l.p50, l.p90, l.p99),
        ));
        rows.push((
            "latency p99.9 / max / mean".to_owned(),
            format!("{:.3} / {:.3} / {:.3} ms", l.p999, l.max, l.mean),
        ));
        if let Some(mrtr) = &self.mrtr {
            rows.push((
                "rounds / per operation".to_owned(),
                format!("{} / {:.2}", mrtr.rounds, mrtr.rounds_per_operation),
            ));
        }
        if [Scenario::Streams.name(), Scenario::Listen.name()].contains(&self.scenario) {
            rows.push((
                "streams open / failed".to_owned(),
                format!("{} / {}", self.streams.open, self.streams.failed),
            ));
        }
        let e = &self.events;
        if (EventCounts { rounds: 0, ..*e }) != EventCounts::default() {
            rows.push((
                "events received".to_owned(),
                format!(
                    "{} (gaps {}, duplicates {}, out of order {})",
                    e.received, e.gaps, e.duplicates, e.out_of_order
                ),
            ));
        }
        for (kind, count) in &self.errors {
            let example = self.error_examples.get(kind).map_or("", String::as_str);
            rows.push((format!("error {kind}"), format!("{count}: {example}")));
        }
        if let Some(error) = &self.setup_error {
            rows.push(("setup failed".to_owned(), error.clone()));
        }
        for note in &self.notes {
            rows.push(("note".to_owned(), note.clone()));
        }
        rows
    }

    pub(crate) fn to_table(&self) -> String {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["shoal-load", ""]);
        for (what, value) in self.rows() {
            table.add_row([what, value]);
        }
        if let Some(column) = table.column_mut(0) {
            column.set_cell_alignment(CellAlignment::Left);
        }
        table.to_string()
    }
}

/// A map keyed by error kind, keyed by the kind's name.
fn by_key<V: Clone>(map: &BTreeMap<ErrorKind, V>) -> BTreeMap<String, V> {
    map.iter()
        .map(|(kind, value)| (kind.to_string(), value.clone()))
        .collect()
}

/// Writes `dir/index.html`: the summary, a latency histogram and throughput per second.
pub(crate) fn write_html(
    dir: &Path,
    summary: &Summary,
    latencies: &Histogram<u64>,
) -> anyhow::Result<()> {
    let latency = latency_chart(latencies)?;
    let throughput = throughput_chart(&summary.timeline)?;
    let mut html = String::new();
    let title = format!("shoal-load: {}", summary.scenario);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left;vertical-align:top;\
         white-space:pre-wrap}}</style>\n</head>\n<body>\n<h1>{}</h1>\n<table>\n",
        escape(&title),
        escape(&title)
    );
    for (what, value) in summary.rows() {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(&what),
            escape(&value)
        );
    }
    html.push_str("</table>\n<h2>Latency</h2>\n");
    html.push_str(&latency);
    html.push_str("\n<h2>Throughput</h2>\n");
    html.push_str(&throughput);
    html.push_str("\n</body>\n</html>\n");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("index.html");
    std::fs::write(&path, html).with_context(|| format!("writing {}", path.display()))
}

/// (from, to, count) bars in milliseconds, from the fastest to p99.9; the last bar also
/// holds the slower tail.
fn latency_bars(latencies: &Histogram<u64>) -> Vec<(f64, f64, u64)> {
    if latencies.is_empty() {
        return Vec::new();
    }
    let low = latencies.min();
    let high = latencies.value_at_quantile(0.999).max(low + 1);
    let width = (high - low).div_ceil(HISTOGRAM_BARS).max(1);
    let mut counts = vec![0u64; HISTOGRAM_BARS as usize];
    for value in latencies.iter_recorded() {
        let bar = (value.value_iterated_to().saturating_sub(low) / width).min(HISTOGRAM_BARS - 1);
        counts[bar as usize] += value.count_at_value();
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| {
            let from = low + i as u64 * width;
            (ms(from), ms(from + width), count)
        })
        .collect()
}

fn latency_chart(latencies: &Histogram<u64>) -> anyhow::Result<String> {
    let bars = latency_bars(latencies);
    let from = bars.first().map_or(0.0, |b| b.0);
    let to = bars.last().map_or(1.0, |b| b.1);
    let tallest = bars.iter().map(|b| b.2).max().unwrap_or(0).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Latency of successful operations", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(from..to, 0u64..tallest + tallest / 10 + 1)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("latency (ms)")
            .y_desc("operations")
            .disable_x_mesh()
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(bars.iter().map(|&(from, to, count)| {
                Rectangle::new([(from, 0), (to, count)], BLUE.mix(0.6).filled())
            }))
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn throughput_chart(timeline: &[Second]) -> anyhow::Result<String> {
    let seconds = timeline.len().max(1) as u64;
    let highest = timeline
        .iter()
        .map(|s| s.ok.max(s.errors))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Operations per second", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0u64..seconds, 0u64..highest + highest / 10 + 1)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("second")
            .y_desc("operations")
            .draw()
            .map_err(plot_error)?;
        for (label, color, count) in [
            ("ok", GREEN, (|s: &Second| s.ok) as fn(&Second) -> u64),
            ("errors", RED, |s: &Second| s.errors),
        ] {
            let points = timeline.iter().map(|s| (s.second, count(s)));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(plot_error)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn plot_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {error}")
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn bars_cover_every_latency_once() {
        let mut latencies = Histogram::<u64>::new(3).unwrap();
        for micros in [100, 150, 900, 1000, 5000, 1_000_000] {
            latencies.record(micros).unwrap();
        }
        let bars = latency_bars(&latencies);
        assert_eq!(bars.len() as u64, HISTOGRAM_BARS);
        assert_eq!(bars.iter().map(|b| b.2).sum::<u64>(), 6);
        assert!((bars[0].0 - 0.1).abs() < 0.001, "{:?}", bars[0]);
        assert!(latency_bars(&Histogram::new(3).unwrap()).is_empty());
    }

    #[test]
    fn charts_are_svg_even_without_data() {
        let empty = Histogram::<u64>::new(3).unwrap();
        assert!(latency_chart(&empty).unwrap().starts_with("<svg"));
        let timeline = [
            Second {
                second: 0,
                ok: 5,
                errors: 1,
            },
            Second {
                second: 1,
                ok: 7,
                errors: 0,
            },
        ];
        let svg = throughput_chart(&timeline).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("errors"), "{svg}");
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
