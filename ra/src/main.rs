//! `gpki-ra serve --config ra.toml`: the registration authority service. It holds
//! no CA key: approved requests go to the CA service over mutual TLS.

use std::process::ExitCode;

use gpki_service::serve_cli::ServeCli;

/// mimalloc, as in every gpki binary (docs/dependencies.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = ServeCli {
        name: "gpki-ra",
        about: "gpki registration authority service (mutual TLS API for RA operators)",
        serve: "Serve the RA API until SIGTERM or Ctrl-C",
        default_config: "ra.toml",
    };
    cli.run(|args| async move {
        let mut c = gpki_ra::Config::load(&args.config)?;
        c.service.override_listen(args.listen);
        gpki_ra::serve(c).await
    })
}
