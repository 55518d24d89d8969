//! The `shoal` binary. Run `shoal serve --help` for every setting.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use shoal_core::handler::Handlers;
use shoal_server::cli::{self, ServeArgs};
use shoal_server::{telemetry, tools};

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
    /// Serve MCP over Streamable HTTP. Every flag is also a SHOAL_* variable and a key of the
    /// TOML file; flags win over variables, variables over the file.
    Serve(ServeArgs),
}

fn main() -> anyhow::Result<()> {
    let command = Cli::command().mut_subcommand("serve", cli::with_variables_in_help);
    let Cli {
        command: Command::Serve(args),
    } = Cli::from_arg_matches(&command.get_matches()).map_err(|error| error.exit())?;
    let (settings, binary) = args.resolve()?;
    let telemetry = telemetry::init(
        binary.log_format,
        binary.otlp_endpoint.as_deref(),
        settings.node_id.as_str(),
    )?;
    let handlers = binary
        .tools
        .iter()
        .filter_map(|name| tools::by_name(name))
        .fold(Handlers::new(), Handlers::merge);
    tracing::info!(tools = %binary.tools.join(","), "built-in tool sets");
    let served = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(shoal::run(settings, handlers));
    // Outside the runtime: the exporter's client is a blocking one.
    telemetry.shutdown();
    Ok(served?)
}
