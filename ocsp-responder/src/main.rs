//! `gpki-ocsp serve --config ocsp.toml`: the OCSP responder as a process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gpki-ocsp",
    version,
    about = "gpki OCSP responder (RFC 6960 / RFC 5019)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer OCSP requests for the CAs in the config until SIGTERM or Ctrl-C.
    Serve {
        #[arg(long, short, default_value = "ocsp.toml")]
        config: PathBuf,
        /// Override the config's listen address.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Write every pre-signed response, base64, one per line (for a CDN, or for
    /// `cfssl ocspserve -responses`).
    Export {
        #[arg(long, short, default_value = "ocsp.toml")]
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a config file and exit.
    CheckConfig {
        #[arg(long, short, default_value = "ocsp.toml")]
        config: PathBuf,
    },
}

/// mimalloc, as in every gpki binary (docs/dependencies.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    gpki_service::init_logging();
    let result = gpki_service::block_on(async {
        match cli.command {
            Command::Serve { config, listen } => {
                let mut c = gpki_ocsp::Config::load(&config)?;
                c.service.override_listen(listen);
                gpki_ocsp::serve(c).await
            }
            Command::Export { config, out } => {
                use base64::Engine;
                let c = gpki_ocsp::Config::load(&config)?;
                let responses = gpki_ocsp::export(c).await?;
                let mut text = String::with_capacity(responses.len() * 1400);
                for r in &responses {
                    text += &base64::engine::general_purpose::STANDARD.encode(r);
                    text.push('\n');
                }
                std::fs::write(&out, text).map_err(|e| {
                    gpki_pki::Error::internal(format!("cannot write {}: {e}", out.display()))
                })?;
                eprintln!("{} responses written to {}", responses.len(), out.display());
                Ok(())
            }
            Command::CheckConfig { config } => gpki_ocsp::Config::load(&config).map(|c| {
                println!(
                    "{}: {} CA(s), listen {}",
                    config.display(),
                    c.cas.len(),
                    c.service.listen
                );
            }),
        }
    });
    gpki_service::exit_with("gpki-ocsp", result)
}
