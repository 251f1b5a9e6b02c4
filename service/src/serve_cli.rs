//! The command line of a service binary whose one verb is `serve` (`gpki-ca`,
//! `gpki-ra`): `NAME serve [--config FILE] [--listen ADDR]`, then the service
//! run on a Tokio runtime until a signal, its error printed as `NAME: error`.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{value_parser, Arg, Command};

use crate::Result;

/// What a `serve` binary says of itself.
pub struct ServeCli {
    /// The binary's name (`gpki-ca`).
    pub name: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// One line on what `serve` does.
    pub serve: &'static str,
    /// The config file read when `--config` is not given.
    pub default_config: &'static str,
}

/// The arguments of `serve`.
pub struct ServeArgs {
    pub config: PathBuf,
    /// Overrides the config's listen address.
    pub listen: Option<String>,
}

impl ServeCli {
    fn command(&self) -> Command {
        let serve = Command::new("serve")
            .about(self.serve)
            .arg(
                Arg::new("config")
                    .long("config")
                    .short('c')
                    .value_name("CONFIG")
                    .default_value(self.default_config)
                    .value_parser(value_parser!(PathBuf)),
            )
            .arg(
                Arg::new("listen")
                    .long("listen")
                    .value_name("LISTEN")
                    .help("Override the config's listen address"),
            );
        Command::new(self.name)
            .version(env!("CARGO_PKG_VERSION"))
            .about(self.about)
            .subcommand_required(true)
            .arg_required_else_help(true)
            .subcommand(serve)
    }

    /// Parses the process's arguments (exiting with clap's message when they are
    /// wrong), starts logging and runs `serve` on them.
    pub fn run<F, Fut>(self, serve: F) -> ExitCode
    where
        F: FnOnce(ServeArgs) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let matches = self.command().get_matches();
        let Some((_, m)) = matches.subcommand() else {
            unreachable!("clap requires the one subcommand, serve")
        };
        let args = ServeArgs {
            config: m
                .get_one::<PathBuf>("config")
                .cloned()
                .expect("config has a default"),
            listen: m.get_one::<String>("listen").cloned(),
        };
        crate::init_logging();
        crate::exit_with(self.name, crate::block_on(serve(args)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLI: ServeCli = ServeCli {
        name: "gpki-x",
        about: "x",
        serve: "Serve",
        default_config: "x.toml",
    };

    #[test]
    fn serve_takes_a_config_and_a_listen_address() {
        CLI.command().debug_assert();
        let m = CLI
            .command()
            .try_get_matches_from(["gpki-x", "serve", "--listen", "127.0.0.1:1"])
            .unwrap();
        let (name, m) = m.subcommand().unwrap();
        assert_eq!(name, "serve");
        assert_eq!(
            m.get_one::<PathBuf>("config").unwrap(),
            &PathBuf::from("x.toml")
        );
        assert_eq!(m.get_one::<String>("listen").unwrap(), "127.0.0.1:1");
        // No verb is an error, as is an unknown one.
        assert!(CLI.command().try_get_matches_from(["gpki-x"]).is_err());
        assert!(CLI
            .command()
            .try_get_matches_from(["gpki-x", "run"])
            .is_err());
    }
}
