//! `gpki-api serve --config api.toml`: the standard API (certificate login and
//! document verification over HTTP) as a process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gpki-api",
    version,
    about = "gpki standard API: certificate login and signed-document verification over HTTP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer logins and verifications until SIGTERM or Ctrl-C.
    Serve {
        #[arg(long, short, default_value = "api.toml")]
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
        let mut c = gpki_api::server::Config::load(&config)?;
        c.service.override_listen(listen);
        gpki_api::server::serve(c).await
    });
    gpki_service::exit_with("gpki-api", result)
}
