//! `gpki-tsa serve --config tsa.toml`: the timestamp authority as a process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gpki-tsa",
    version,
    about = "gpki timestamp authority (RFC 3161 / RFC 5816)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer timestamp requests until SIGTERM or Ctrl-C.
    Serve {
        #[arg(long, short, default_value = "tsa.toml")]
        config: PathBuf,
        /// Override the config's listen address.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Print the kernel's clock synchronisation state (what the TSA checks).
    Clock,
}

/// mimalloc, as in every gpki binary (docs/dependencies.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    gpki_service::init_logging();
    let result = match cli.command {
        Command::Clock => {
            let s = gpki_tsa::clock::state();
            println!("{}", serde_json::to_string(&s).expect("JSON"));
            Ok(())
        }
        Command::Serve { config, listen } => gpki_service::block_on(async {
            let mut c = gpki_tsa::Config::load(&config)?;
            c.service.override_listen(listen);
            gpki_tsa::serve(c).await
        }),
    };
    gpki_service::exit_with("gpki-tsa", result)
}
