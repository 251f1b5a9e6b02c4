//! `gpki-ca serve --config ca.toml`: the online CA service, the one process that
//! opens the subordinate CA keys.

use std::process::ExitCode;

use gpki_service::serve_cli::ServeCli;

/// mimalloc, as in every gpki binary (docs/dependencies.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = ServeCli {
        name: "gpki-ca",
        about: "gpki CA service (mutual TLS API for RA services and delegated signers)",
        serve: "Serve the CA API until SIGTERM or Ctrl-C",
        default_config: "ca.toml",
    };
    cli.run(|args| async move {
        let mut c = gpki_ca_service::Config::load(&args.config)?;
        c.service.override_listen(args.listen);
        gpki_ca_service::serve(c).await
    })
}
