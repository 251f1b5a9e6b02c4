//! The one process fixture: a service the test starts (a gpki binary, or gpki
//! under a wrapper such as faketime), waited for until it is ready, and killed and
//! reaped when the test lets go of it, whatever the test's outcome.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Env;

pub struct Process {
    child: Child,
    name: String,
}

impl Process {
    /// The binary `name` (gpki-ca, gpki-ra, gpki-ocsp, gpki-tsa, gpki-api), built
    /// beside gpki.
    pub fn binary(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_gpki")).with_file_name(name)
    }

    /// Starts `cmd` (named `name` in failures) with stdout discarded and stderr as
    /// `stderr`: piped, it is shown if the process exits before it is ready.
    /// It leads a process group of its own, so a wrapper's child (faketime's
    /// gpki) is killed with it.
    pub fn start(name: &str, cmd: &mut Command, stderr: Stdio) -> Process {
        use std::os::unix::process::CommandExt;
        let child = cmd
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Process {
            child,
            name: name.to_string(),
        }
    }

    /// `BIN serve --config CONFIG` in the env's directory, without a passphrase
    /// from the environment.
    pub fn serve(env: &Env, bin: &str, config: &str, stderr: Stdio) -> Process {
        Self::serve_with(env, bin, config, &[], stderr)
    }

    /// [`Process::serve`] with environment `vars` (a failpoint, a store setting).
    pub fn serve_with(
        env: &Env,
        bin: &str,
        config: &str,
        vars: &[(&str, &str)],
        stderr: Stdio,
    ) -> Process {
        Self::start(
            bin,
            Command::new(Self::binary(bin))
                .envs(vars.iter().copied())
                .args(["serve", "--config", config])
                .current_dir(env.path(""))
                .env_remove("GPKI_KEY_PASS"),
            stderr,
        )
    }

    /// Calls `ready` every `every` until it returns true; panics if the process
    /// exits first (with its stderr, when piped) or `secs` seconds pass.
    pub fn wait_until(
        &mut self,
        what: &str,
        secs: u64,
        every: Duration,
        mut ready: impl FnMut() -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("{} exited ({status}) before {what}:\n{err}", self.name);
            }
            if ready() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {what} did not happen within {secs} s",
                self.name
            );
            std::thread::sleep(every);
        }
    }

    /// Waits until `url` answers HTTP 200, for at most `secs` seconds.
    pub fn wait_http_ok(&mut self, url: &str, secs: u64) {
        self.wait_until(
            &format!("{url} answered 200"),
            secs,
            Duration::from_millis(100),
            || {
                let code = Command::new("curl")
                    .args([
                        "-s",
                        "--max-time",
                        "2",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        url,
                    ])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&code.stdout) == "200"
            },
        );
    }

    /// Waits until 127.0.0.1:`port` accepts connections, for at most `secs`
    /// seconds (for a service whose health check may refuse while it runs).
    pub fn wait_listening(&mut self, port: u16, secs: u64) {
        self.wait_until(
            &format!("listening on {port}"),
            secs,
            Duration::from_millis(50),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited (it is reaped if so).
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Kills it (SIGKILL: no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends `signal` (a `kill -SIGNAL` name: HUP, TERM); whether kill succeeded.
    pub fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([&format!("-{signal}"), &self.id().to_string()])
            .status()
            .unwrap()
            .success()
    }

    /// SIGTERM, then its exit status.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        self.child.wait().unwrap()
    }
}

impl Drop for Process {
    /// Kills its whole process group (a wrapper and what it started), then reaps it.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gpki dev up` in the env's directory listening on the addresses of its OCSP
/// responder, TSA, CA service, RA service and API, as a user runs it: its own store
/// and passphrase under the data directory, no URL base. Not yet waited for.
pub fn dev_up(env: &Env, [ocsp, tsa, ca, ra, api]: [&str; 5]) -> Process {
    Process::start(
        "gpki dev up",
        env.command()
            .env_remove("GPKI_KEY_PASS_FILE")
            .env_remove("GPKI_STORE")
            .env_remove("GPKI_URL_BASE")
            .args(["dev", "up", "--listen", ocsp, "--tsa-listen", tsa])
            .args(["--ca-listen", ca, "--ra-listen", ra, "--api-listen", api]),
        Stdio::piped(),
    )
}
