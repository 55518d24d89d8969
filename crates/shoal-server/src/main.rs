//! The `shoal` binary. Run `shoal serve --help` for every setting.

use clap::{Parser, Subcommand};
use shoal_server::config::ServeArgs;
use shoal_server::telemetry;

// Every request allocates a little (headers, JSON, tasks); mimalloc's thread-local free lists
// serve that pattern with less CPU than glibc's malloc (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Shoal: a horizontally scalable MCP server.
#[derive(Debug, Parser)]
#[command(name = "shoal", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP over Streamable HTTP.
    Serve(ServeArgs),
}

fn main() -> anyhow::Result<()> {
    let Cli {
        command: Command::Serve(args),
    } = Cli::parse();
    let mut config = args.resolve()?;
    // Resolved once, so that the exported resource and the server agree on it.
    let node = shoal_server::serve::node_id(&config);
    config.node_id = Some(node.to_string());
    let telemetry = telemetry::init(
        config.log_format,
        config.otlp_endpoint.as_deref(),
        node.as_str(),
    )?;
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(shoal_server::serve::run(config));
    // Outside the runtime: the exporter's client is a blocking one.
    telemetry.shutdown();
    result
}
