//! Files gpki writes: durable before anything is handed out, keys under a modern
//! KDF, and next steps that name a gpki that runs.

use super::*;

// Issue 9.7: on SQLite, what gpki hands out (here the revocation it reports) is on
// disk first. strace is the oracle: the WAL is synced (fsync/fdatasync on
// gpki.db-wal) before the first byte reaches stdout. With `synchronous = NORMAL`
// the WAL is synced only at a checkpoint, after the answer has left.
#[test]
fn sqlite_commits_are_durable_before_anything_is_handed_out() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("strace") {
        return;
    }
    env.hierarchy();
    env.issue_official("a.pem");
    let serial = env.issue_official("b.pem")["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let trace = env.path("trace.txt");
    for (name, args) in [
        (
            "revoke",
            vec![
                "cert",
                "revoke",
                "--ca",
                "mois",
                "--serial",
                &serial,
                "--reason",
                "keyCompromise",
            ],
        ),
        (
            "issue",
            vec![
                "cert",
                "issue",
                "--ca",
                "mois",
                "--profile",
                "official-sign",
                "--subject",
                OFFICIAL,
                "--generate-key",
                "--key-out",
                "c.key",
            ],
        ),
    ] {
        let out = env
            .command()
            .env_remove("GPKI_LOG")
            .arg0_strace(&trace)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&trace).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let first_out = lines
            .iter()
            .position(|l| l.contains("write(1<") || l.contains("write(1,"))
            .unwrap_or_else(|| panic!("{name}: nothing written to stdout:\n{text}"));
        let synced = lines[..first_out].iter().any(|l| {
            (l.contains("fdatasync(") || l.contains("fsync(")) && l.contains("gpki.db-wal")
        });
        assert!(
            synced,
            "{name}: the WAL was not synced before the answer left:\n{}",
            lines
                .iter()
                .filter(|l| !l.contains("write(2"))
                .copied()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Runs a command under `strace -f -y` (syscalls that sync, and writes), its trace
/// in `out`.
trait UnderStrace {
    fn arg0_strace(&mut self, out: &std::path::Path) -> std::process::Command;
}

impl UnderStrace for std::process::Command {
    fn arg0_strace(&mut self, out: &std::path::Path) -> std::process::Command {
        let mut c = std::process::Command::new("strace");
        c.args(["-f", "-y", "-e", "trace=fsync,fdatasync,write", "-o"])
            .arg(out)
            .arg(self.get_program());
        if let Some(dir) = self.get_current_dir() {
            c.current_dir(dir);
        }
        for (k, v) in self.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }
}

// Issue 9.9: key files are PBES2 with PBKDF2-HMAC-SHA256 at 600,000 iterations and
// AES-256-CBC, as OpenSSL's asn1parse reads them, and `openssl pkey` still opens them.
#[test]
fn key_files_use_a_modern_kdf_that_openssl_reads() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("openssl") {
        return;
    }
    env.hierarchy();
    env.issue_official("a.pem");
    for (key, pass) in [("data/keys/mois.key.pem", "pass"), ("a.pem.key", "outpass")] {
        let parsed = env.openssl_ok(&["asn1parse", "-in", key]);
        assert!(
            parsed.contains(":PBES2")
                && parsed.contains(":PBKDF2")
                && parsed.contains(":hmacWithSHA256")
                && parsed.contains(":aes-256-cbc"),
            "{key}: {parsed}"
        );
        // The iteration count: the only INTEGER inside PBKDF2-params here.
        let iterations = parsed
            .lines()
            .find(|l| l.contains("prim: INTEGER"))
            .and_then(|l| l.rsplit(':').next())
            .map(|h| i64::from_str_radix(h.trim(), 16).unwrap())
            .unwrap_or_else(|| panic!("{key}: no iteration count in {parsed}"));
        assert!(iterations >= 600_000, "{key}: {iterations} iterations");
        env.openssl_ok(&[
            "pkey",
            "-in",
            key,
            "-passin",
            &format!("file:{pass}"),
            "-noout",
        ]);
        let wrong = env.openssl(&["pkey", "-in", key, "-passin", "pass:wrong", "-noout"]);
        assert_ne!(wrong.code, 0, "{key} opened with a wrong passphrase");
    }
}

// Issue 9.19: after `cargo run … dev up`, no `gpki` need be on PATH; the next steps
// it prints must still run as printed.
#[test]
fn dev_up_next_steps_name_a_gpki_that_runs() {
    let env = Env::new(Backend::Sqlite).unwrap();
    let out = env
        .command()
        .env_remove("GPKI_KEY_PASS_FILE")
        .env_remove("GPKI_STORE")
        .env("PATH", "/usr/bin:/bin")
        .args(["dev", "up", "--no-serve"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let export = text
        .lines()
        .find(|l| l.trim_start().starts_with("export GPKI_KEY_PASS_FILE="))
        .unwrap_or_else(|| panic!("{text}"))
        .trim()
        .to_string();
    let list = text
        .lines()
        .find(|l| l.trim_end().ends_with(" ca list"))
        .unwrap_or_else(|| panic!("{text}"))
        .trim()
        .to_string();
    assert!(
        !list.starts_with("gpki "),
        "gpki is not on this PATH: {list}"
    );
    // Run exactly what was printed, from the same directory, with the same PATH.
    let run = std::process::Command::new("/bin/sh")
        .current_dir(env.path(""))
        .env("PATH", "/usr/bin:/bin")
        .env_remove("GPKI_STORE")
        .env_remove("GPKI_KEY_PASS_FILE")
        .env("GPKI_DATA_DIR", env.path("data"))
        .args(["-c", &format!("{export} && {list}")])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && listed.contains("gpki-root") && listed.contains("mois"),
        "{list}: {listed}{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
