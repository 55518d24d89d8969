//! Redis command metrics, recorded through the `metrics` facade (the binary installs the
//! exporter; without one, recording is a no-op).
//!
//! `command` is the host operation a round trip serves (a bounded set: [`COMMANDS`]), not the
//! Redis command, which is nearly always `EVALSHA`.

use std::future::Future;
use std::sync::OnceLock;

use metrics::{Counter, Histogram};

/// Histogram: duration of one Redis round trip, by `command`.
pub const COMMAND_DURATION: &str = "shoal_redis_command_duration_seconds";
/// Counter: Redis round trips that failed (error reply, timeout, connection down), by
/// `command`.
pub const COMMAND_ERRORS: &str = "shoal_redis_command_errors_total";

/// The histograms of this module (for the exporter's bucket settings).
pub const HISTOGRAMS: [&str; 1] = [COMMAND_DURATION];

/// Every value of the `command` label.
pub const COMMANDS: [&str; 19] = [
    "create_session",
    "session",
    "update_session",
    "delete_session",
    "sessions_of",
    "append",
    "subscribe",
    "read",
    "send_to_node",
    "broadcast",
    "node_alive",
    "ping",
    "heartbeat",
    "kv_put_if_absent",
    "kv_put",
    "kv_get",
    "kv_take",
    "kv_delete",
    "kv_compare_and_swap",
];

/// Registers the help text of every metric of the Redis host with the installed recorder, and
/// creates the error counters at zero (so that they are exported before the first error).
pub fn describe() {
    for command in COMMANDS {
        metrics::counter!(COMMAND_ERRORS, "command" => command).absolute(0);
    }
    let _ = HANDLES.set(Handles {
        durations: COMMANDS
            .map(|command| metrics::histogram!(COMMAND_DURATION, "command" => command)),
        errors: COMMANDS.map(|command| metrics::counter!(COMMAND_ERRORS, "command" => command)),
    });
    metrics::describe_histogram!(
        COMMAND_DURATION,
        metrics::Unit::Seconds,
        "Duration of Redis round trips, by the session host operation they serve"
    );
    metrics::describe_counter!(
        COMMAND_ERRORS,
        "Failed Redis round trips (error reply, timeout, connection down), by operation"
    );
}

/// The metrics of each command (in the order of [`COMMANDS`]) from the recorder installed when
/// [`describe`] ran: looking them up by name and label for every round trip cost more than a
/// hundredth of a `tools/call` on Redis (callgrind).
struct Handles {
    durations: [Histogram; COMMANDS.len()],
    errors: [Counter; COMMANDS.len()],
}

static HANDLES: OnceLock<Handles> = OnceLock::new();

/// Runs one round trip of `command`, observing its duration and counting its failure.
pub(crate) async fn observe<T, E>(
    command: &'static str,
    round_trip: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    debug_assert!(COMMANDS.contains(&command), "unlisted command {command}");
    let started = tokio::time::Instant::now();
    let result = round_trip.await;
    let elapsed = started.elapsed().as_secs_f64();
    let index = COMMANDS.iter().position(|known| *known == command);
    match (HANDLES.get(), index) {
        (Some(handles), Some(index)) => {
            handles.durations[index].record(elapsed);
            if result.is_err() {
                handles.errors[index].increment(1);
            }
        }
        // Before `describe` (tests that install no recorder): by name.
        _ => {
            metrics::histogram!(COMMAND_DURATION, "command" => command).record(elapsed);
            if result.is_err() {
                metrics::counter!(COMMAND_ERRORS, "command" => command).increment(1);
            }
        }
    }
    result
}
