//! `gpki-ca serve --config ca.toml`: the online CA service, the one process that
//! opens the subordinate CA keys.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gpki-ca",
    version,
    about = "gpki CA service (mutual TLS API for RA services and delegated signers)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the CA API until SIGTERM or Ctrl-C.
    Serve {
        #[arg(long, short, default_value = "ca.toml")]
        config: PathBuf,
        /// Override the config's listen address.
        #[arg(long)]
        listen: Option<String>,
    },
}

/// mimalloc, as in every gpki binary (docs/dependencies.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    gpki_service::init_logging();
    let Command::Serve { config, listen } = cli.command;
    let result = gpki_service::block_on(async {
        let mut c = gpki_ca_service::Config::load(&config)?;
        c.service.override_listen(listen);
        gpki_ca_service::serve(c).await
    });
    gpki_service::exit_with("gpki-ca", result)
}
