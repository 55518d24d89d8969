//! The `shoal` binary. Run `shoal serve --help` for every setting.

use clap::{Parser, Subcommand};
use shoal_server::config::{LogFormat, ServeArgs};
use tracing_subscriber::EnvFilter;

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
    let config = args.resolve()?;
    init_logging(config.log_format);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(shoal_server::serve::run(config))
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("SHOAL_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
