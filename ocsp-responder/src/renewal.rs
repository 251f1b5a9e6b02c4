//! The responder renews its own certificates through the CA service (`[renewal]`
//! in ocsp.toml): before a responder certificate comes within `before_days` of
//! expiry, it makes a new key, asks `gpki-ca` over mutual TLS (as a service client
//! of role `ocsp`) for the next certificate, writes both files by rename, and loads
//! them. The current pair keeps answering until the new one is loaded: no answer is
//! missed, and no CA key is ever opened here (design invariant 10).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gpki_pki::{Error, KeyType, Result, Signer, SoftwareKey};
use gpki_service::api::ApiClient;
use gpki_service::ca_api::{signer_renewal_message, CertificateReply, SignerRenewBody};
use gpki_service::mtls::ClientTls;
use serde::Deserialize;

use crate::response::ResponderKey;
use crate::State;

/// `[renewal]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalConfig {
    /// Renew a certificate with fewer days than this left.
    #[serde(default = "default_before_days")]
    pub before_days: u32,
    /// How often to look (and how soon to try again after a failure).
    #[serde(default = "default_check_secs")]
    pub check_interval_secs: u64,
    /// The CA service, as this responder's client certificate (role ocsp).
    pub ca: ClientTls,
}

fn default_before_days() -> u32 {
    10
}
fn default_check_secs() -> u64 {
    3600
}

/// Looks at once, then every `check_interval_secs`, until `stop` turns true.
pub async fn run(state: Arc<State>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(cfg) = state.config.renewal.clone() else {
        return;
    };
    loop {
        if let Err(e) = renew_due(&state, &cfg).await {
            tracing::error!(error = %e, "responder certificate renewal failed; the current certificates keep answering");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(cfg.check_interval_secs.max(1))) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Renews every responder certificate within `before_days` of expiry; a CA whose
/// renewal fails does not hold up the others (the first error is returned).
pub async fn renew_due(state: &State, cfg: &RenewalConfig) -> Result<()> {
    let now = gpki_pki::time::now();
    let mut client = None;
    let mut first_error = None;
    for (i, auth) in state.authorities.iter().enumerate() {
        let current = auth.responder();
        if current.not_after - now >= i64::from(cfg.before_days) * 86_400 {
            continue;
        }
        let client = match &client {
            Some(c) => c,
            None => client.insert(cfg.ca.client()?),
        };
        if let Err(e) = renew_one(state, i, &current, client).await {
            tracing::error!(ca = %auth.name, error = %e, "responder certificate not renewed; the current one keeps answering");
            first_error.get_or_insert(e);
        }
    }
    crate::worker::reload_if_changed(state, false);
    first_error.map_or(Ok(()), Err)
}

/// One CA's responder certificate: a new key, the CA service's certificate for
/// it, checked, then both files replaced.
async fn renew_one(
    state: &State,
    i: usize,
    current: &ResponderKey,
    client: &ApiClient,
) -> Result<()> {
    let auth = &state.authorities[i];
    let ca = &state.config.cas[i];
    let cert = gpki_pki::cert::decode(&current.cert_der)?;
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)?;
    let key = SoftwareKey::generate(KeyType::of_spki(&spki)?)?;
    let csr = gpki_pki::csr::build(&key, &cert.tbs_certificate.subject)?;
    let serial =
        gpki_pki::serial::SerialNumber::from_bytes(cert.tbs_certificate.serial_number.as_bytes())?
            .to_hex();
    // Proof that this responder holds the signer it renews.
    let proof = current.signer.sign(&signer_renewal_message(
        &hex::encode(openssl::sha::sha256(&current.cert_der)),
        &hex::encode(openssl::sha::sha256(key.public_key_der())),
    ))?;
    let reply: CertificateReply = client
        .post(
            "v1/signers/renew",
            &SignerRenewBody {
                ca: auth.name.clone(),
                serial: serial.clone(),
                csr: String::from_utf8_lossy(&csr).into_owned(),
                proof: hex::encode(proof),
            },
        )
        .await?;
    let pem = reply.certificate.ok_or_else(|| {
        Error::internal(format!(
            "the CA service answered no certificate for {serial}"
        ))
    })?;
    // Nothing is written unless the answer is a responder certificate for the new
    // key, signed by this CA and in force: the checks of a load.
    let new_der = gpki_pki::pem::decode(pem.as_bytes(), "CERTIFICATE")?;
    crate::check_responder_cert(&auth.name, &new_der, &auth.ca_cert_der, &key)?;
    // Key first, then certificate, each by rename: a reload between the two sees a
    // mismatched pair, refuses it and keeps the current one in memory.
    replace(&ca.key, &key.to_encrypted_pem(&state.key_pass)?, true)?;
    replace(&ca.cert, pem.as_bytes(), false)?;
    tracing::info!(ca = %auth.name, old = %serial, new = %reply.serial, not_after = reply.not_after, "responder certificate renewed through the CA service");
    Ok(())
}

/// Writes `bytes` beside `path` (a new file, synced) and renames it over `path`
/// (mode 0600 for a key).
fn replace(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".renewing");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    if private {
        gpki_pki::signer::write_private_file(&tmp, bytes)?;
    } else {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
            .map_err(|e| Error::internal(format!("cannot write {}: {e}", tmp.display())))?;
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::internal(format!("cannot replace {}: {e}", path.display())))
}
