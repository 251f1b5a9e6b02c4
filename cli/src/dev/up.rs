//! `gpki dev up`: the steps in order, the report of what was made and found, and
//! the services run until Ctrl-C.

use std::path::{Path, PathBuf};

use clap::Args;
use gpki_ca::Ca;
use gpki_pki::signer::{write_private_file, Passphrase};
use gpki_pki::{KeyType, Result};
use gpki_store::Store;
use serde_json::json;

use super::hierarchy::{self, DevCerts};
use super::services::{self, Services};
use super::{Tally, CA_SERVER_NAME, DEV_RA, MOIS, RA_ADMIN, RA_SERVER_NAME, ROOT, SUB};
use crate::{emit, Global};

/// The arguments of `gpki dev up`.
#[derive(Args)]
pub struct UpArgs {
    /// Set everything up, then exit instead of serving
    #[arg(long)]
    no_serve: bool,
    /// Where the responder listens (certificates' AIA point here)
    #[arg(long, env = "GPKI_DEV_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Where the TSA listens
    #[arg(long, env = "GPKI_DEV_TSA_LISTEN", default_value = "127.0.0.1:8081")]
    tsa_listen: String,
    /// Where the CA service listens (mutual TLS)
    #[arg(long, env = "GPKI_DEV_CA_LISTEN", default_value = "127.0.0.1:8443")]
    ca_listen: String,
    /// Where the RA service listens (mutual TLS)
    #[arg(long, env = "GPKI_DEV_RA_LISTEN", default_value = "127.0.0.1:8444")]
    ra_listen: String,
    /// Where the standard API (certificate login, document verification) listens
    #[arg(long, env = "GPKI_DEV_API_LISTEN", default_value = "127.0.0.1:8090")]
    api_listen: String,
    /// Key type of the subordinate CA `mois` when it is made (p256, p384,
    /// rsa2048, rsa3072, rsa4096); an existing CA keeps its key
    #[arg(long, default_value = "p384")]
    ca_key_type: String,
}

/// Where the dev services listen.
pub struct Listen {
    pub ocsp: String,
    pub tsa: String,
    pub ca: String,
    pub ra: String,
    pub api: String,
    /// The subordinate CA's key type, when it is made.
    pub ca_key_type: KeyType,
}

/// Create (idempotently) a local hierarchy and one certificate of each profile,
/// then run the OCSP responder the certificates point at until Ctrl-C
pub(super) async fn up(g: &Global, args: UpArgs) -> Result<()> {
    let at = Listen {
        ocsp: args.listen,
        tsa: args.tsa_listen,
        ca: args.ca_listen,
        ra: args.ra_listen,
        api: args.api_listen,
        ca_key_type: args.ca_key_type.parse()?,
    };
    let serve = !args.no_serve;
    let listen = at.ocsp.as_str();
    let dir = &g.data_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| gpki_pki::Error::internal(format!("cannot create {}: {e}", dir.display())))?;
    let keys = Passphrases::ensure(g, dir)?;
    let store = Store::open(&g.store_url()).await?;
    let ca = keys.ca(g, &store)?;
    let mut tally = Tally::default();

    let certs_dir = dir.join("certs");
    hierarchy::ensure_root(&ca, &store, listen, &mut tally).await?;
    hierarchy::ensure_subordinate(&ca, &store, &at, &mut tally).await?;
    hierarchy::ensure_credential_ca(&ca, &store, listen, &mut tally).await?;
    hierarchy::write_ca_certificates(&ca, &store, &certs_dir).await?;

    let sub = store.authority_by_name(SUB).await?;
    let dev_certs = DevCerts {
        ca: &ca,
        store: &store,
        ca_name: SUB,
        ca_id: sub.id,
        dir: &certs_dir,
        pass: &keys.signer_pass,
    };
    hierarchy::issue_end_entities(&dev_certs, &mut tally).await?;
    hierarchy::issue_credential_signers(&dev_certs, &mut tally).await?;
    hierarchy::ensure_status_list(g, &store, listen, &mut tally).await?;
    hierarchy::kra_setup(g, &store, &ca, dir, &keys.signer_pass, &mut tally).await?;
    hierarchy::issue_service_tls(&dev_certs, &mut tally).await?;
    hierarchy::refresh_crls(&ca, &store, dir, &mut tally).await?;

    let services = services::configure(g, &ca, &store, &keys, &at, &mut tally).await?;
    hierarchy::audit_checkpoint(&ca, dir, &mut tally).await?;
    report(g, &store, &tally, &keys.pass_file, &at.tsa);
    if serve {
        run_services(services, &store, dir).await?;
    }
    Ok(())
}

/// The dev passphrase files and what they hold.
///
/// Development only: random passphrases kept beside the keys, mode 0600. The CA
/// keys have one; every other key (the responders', the TSA's, the sample
/// certificates') has another, so the services' configs never name the CA's.
pub(super) struct Passphrases {
    pub(super) pass_file: PathBuf,
    pass: Passphrase,
    pub(super) signer_pass_file: PathBuf,
    pub(super) signer_pass: Passphrase,
    offline_pass_file: PathBuf,
}

impl Passphrases {
    /// Those given (`--key-pass-file`, `--offline-key-pass-file`), else the dev
    /// files in `dir`, made when missing.
    fn ensure(g: &Global, dir: &Path) -> Result<Passphrases> {
        let random_file = |p: PathBuf| -> Result<PathBuf> {
            if !p.exists() {
                let pass = Passphrase::random()?;
                let mut line = zeroize::Zeroizing::new(pass.expose().to_vec());
                line.push(b'\n');
                write_private_file(&p, &line)?;
            }
            Ok(p)
        };
        let pass_file = match &g.key_pass_file {
            Some(p) => p.clone(),
            None => random_file(dir.join("dev-passphrase"))?,
        };
        let pass = Passphrase::from_file(&pass_file)?;
        let signer_pass_file = random_file(dir.join("dev-signer-passphrase"))?;
        let signer_pass = Passphrase::from_file(&signer_pass_file)?;
        // The root is offline: its key in a directory of its own under a passphrase of
        // its own, neither of which the CA service's config names.
        let offline_pass_file = match &g.offline_key_pass_file {
            Some(p) => p.clone(),
            None => random_file(dir.join("offline-passphrase"))?,
        };
        Ok(Passphrases {
            pass_file,
            pass,
            signer_pass_file,
            signer_pass,
            offline_pass_file,
        })
    }

    /// The CA on `store`, with the online keys under the CA passphrase and the
    /// offline root's apart under its own.
    fn ca(&self, g: &Global, store: &Store) -> Result<Ca> {
        Ok(Ca::new(
            store.clone(),
            g.profiles()?,
            g.data_dir.join("keys"),
            self.pass.clone(),
            g.actor(),
        )
        .with_offline_custody(
            g.offline_key_dir(),
            Passphrase::from_file(&self.offline_pass_file)?,
        ))
    }
}

/// Prints what was made and found, where everything is, and the commands to try
/// next.
fn report(g: &Global, store: &Store, tally: &Tally, pass_file: &Path, tsa_listen: &str) {
    let dir = &g.data_dir;
    let (made, found) = (&tally.made, &tally.found);
    let d = dir.display();
    emit(
        g.output,
        json!({ "data_dir": d.to_string(), "store": store.display_url(), "made": made, "found": found, "passphrase_file": pass_file.display().to_string() }),
        || {
            let mut t = format!(
                "gpki dev hierarchy in {d} (store {})\n",
                store.display_url()
            );
            for m in made {
                t += &format!("  made   {m}\n");
            }
            for f in found {
                t += &format!("  exists {f}\n");
            }
            let gpki = invocation();
            t += &format!(
            "\nCertificates and keys: {d}/certs/  (keys encrypted; passphrase in {d}/dev-signer-passphrase)\nCA keys: {d}/keys/ (passphrase in {})\nThe offline root's key: {d}/offline/ (passphrase in {d}/offline-passphrase; the CA service never reaches it)\nCRLs: {d}/crl/\n\nTry next:\n  \
             export GPKI_KEY_PASS_FILE={}\n  \
             {gpki} ca list\n  \
             {gpki} cert list --ca {SUB}\n  \
             openssl verify -x509_strict -CAfile {d}/certs/{ROOT}.crt.pem -untrusted {d}/certs/{SUB}.crt.pem {d}/certs/g-ssl.crt.pem\n  \
             {gpki} ocsp query --cert {d}/certs/g-ssl.crt.pem --issuer {d}/certs/{SUB}.crt.pem --ca-file {d}/certs/{ROOT}.crt.pem\n  \
             {gpki} ts stamp --file README.md --url http://{tsa_listen}/ --out README.tsr\n  \
             {gpki} ts verify --file README.md --token README.tsr --ca-file {d}/certs/{ROOT}.crt.pem --untrusted {d}/certs/{SUB}.crt.pem\n  \
             {gpki} cms sign --in README.md --out README.p7s --key {d}/certs/official-sign.key.pem --cert {d}/certs/official-sign.crt.pem --pass-file {d}/dev-signer-passphrase --tsa http://{tsa_listen}/\n  \
             {gpki} cms verify --in README.p7s --ca-file {d}/certs/{ROOT}.crt.pem --untrusted {d}/certs/{SUB}.crt.pem\n  \
             {gpki} cert revoke --ca {SUB} --serial SERIAL --reason keyCompromise\n  \
             {gpki} crl generate --ca {SUB} --out {d}/crl/{SUB}.crl.pem\n  \
             GPKI_OFFLINE_KEY_PASS_FILE={d}/offline-passphrase {gpki} crl generate --ca {ROOT} --out {d}/crl/{ROOT}.crl.pem\n  \
             GPKI_OFFLINE_KEY_PASS_FILE={d}/offline-passphrase {gpki} ocsp renew-signers --config {d}/ocsp.toml\n  \
             {gpki} audit verify\n\n\
             The RA (operator {RA_ADMIN} of RA {DEV_RA}, over mutual TLS; see README \"Issuing through the RA\"):\n  \
             export GPKI_RA_CONFIG={d}/ra-client.toml GPKI_OUT_PASS_FILE={d}/dev-signer-passphrase\n  \
             {gpki} ra whoami\n  \
             {gpki} key new --key-out hong.key.pem --subject \"CN=Hong Gildong(001234567), OU=people, {MOIS}\" --csr-out hong.csr\n  \
             {gpki} ra submit --idempotency-key hong-1 --profile official-sign --subject \"CN=Hong Gildong(001234567), OU=people, {MOIS}\" --csr hong.csr --identity-method face-to-face --identity-document \"ID card 1234\" --out hong.pem\n  \
             {gpki} ra requests",
            pass_file.display(),
            pass_file.display()
        );
            t
        },
    );
}

/// Runs the OCSP responder, the TSA, the CA and RA services and the standard API
/// until Ctrl-C, then stops them.
async fn run_services(services: Services, store: &Store, dir: &Path) -> Result<()> {
    let d = dir.display();
    let mut signals = gpki_service::Signals::install();
    let running = gpki_ocsp::start(services.ocsp).await?;
    let tsa = gpki_tsa::start(services.tsa).await?;
    // The CA and RA services share this process's store: one pool and one
    // writer, whose groups take both services' writes (on SQLite, two
    // writers would take turns at its one write lock, each sleeping in
    // SQLite's busy handler while the other commits).
    let ca_service = gpki_ca_service::start_on(services.ca, store.clone()).await?;
    let ra_service = gpki_ra::start_on(services.ra, store.clone()).await?;
    let api = gpki_api::server::start(services.api).await?;
    eprintln!(
        "\nOCSP responder on http://{}/ocsp (config {d}/ocsp.toml)\nTSA on http://{}/ (config {d}/tsa.toml)\n\
         CA service on https://{}/ (mutual TLS as {CA_SERVER_NAME}; config {d}/ca.toml)\n\
         RA service on https://{}/ (mutual TLS as {RA_SERVER_NAME}; config {d}/ra.toml)\n\
         Standard API on http://{}/v1/ (certificate login, document verification; config {d}/api.toml)\nCtrl-C stops all five",
        running.local_addr(),
        tsa.local_addr(),
        ca_service.local_addr(),
        ra_service.local_addr(),
        api.local_addr(),
    );
    signals.recv().await;
    api.stop().await;
    // The RA first: its requests in flight still reach the CA service.
    ra_service.stop().await;
    ca_service.stop().await;
    tsa.stop().await;
    running.stop().await;
    Ok(())
}

/// How the printed next steps call gpki: `gpki` when that name on PATH is this very
/// binary, else this binary's full path (after `cargo run`, nothing named gpki may
/// be on PATH at all).
fn invocation() -> String {
    let me = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("gpki"))
            .find(|p| p.is_file())
            .and_then(|p| p.canonicalize().ok())
    });
    match me {
        Some(me) if on_path.as_ref() != Some(&me) => me.display().to_string(),
        _ => "gpki".to_string(),
    }
}
