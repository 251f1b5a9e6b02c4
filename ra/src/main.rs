//! `gpki-ra serve --config ra.toml`: the registration authority service. It holds
//! no CA key: approved requests go to the CA service over mutual TLS.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gpki-ra",
    version,
    about = "gpki registration authority service (mutual TLS API for RA operators)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the RA API until SIGTERM or Ctrl-C.
    Serve {
        #[arg(long, short, default_value = "ra.toml")]
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
        let mut c = gpki_ra::Config::load(&config)?;
        c.service.override_listen(listen);
        gpki_ra::serve(c).await
    });
    gpki_service::exit_with("gpki-ra", result)
}
