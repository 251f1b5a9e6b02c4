//! The responder renews its own certificates through the CA service (`[renewal]`
//! in ocsp.toml): before a responder certificate comes within `before_days` of
//! expiry, it makes a new key, asks `gpki-ca` over mutual TLS (as a service client
//! of role `ocsp`, proving the request with the current key) for the next
//! certificate, checks it, writes both files by rename and loads them. The current
//! pair keeps answering until the new one is loaded: no answer is missed, and no CA
//! key is ever opened here (design invariant 10).

use std::sync::Arc;
use std::time::Duration;

use gpki_pki::Result;
use gpki_service::api::ApiClient;
use gpki_service::signer_renewal::{next_key_path, renew, replace_files_off_workers};

pub use gpki_service::signer_renewal::RenewalConfig;

use crate::response::ResponderKey;
use crate::State;

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
    let mut client = None;
    let mut first_error = None;
    for (i, auth) in state.authorities.iter().enumerate() {
        let current = auth.responder();
        if !cfg.due(&current.cert_der) {
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

/// One CA's responder certificate, checked as a load checks it before any file is
/// written.
async fn renew_one(
    state: &State,
    i: usize,
    current: &ResponderKey,
    client: &ApiClient,
) -> Result<()> {
    let auth = &state.authorities[i];
    let ca = &state.config.cas[i];
    let renewed = renew(
        client,
        &auth.name,
        &auth.ca_cert_der,
        &current.cert_der,
        current.signer.as_ref(),
        &next_key_path(&ca.key),
        &state.key_pass,
    )
    .await?;
    crate::check_responder_cert(
        &auth.name,
        &renewed.cert_der,
        &auth.ca_cert_der,
        &renewed.key,
    )?;
    replace_files_off_workers(
        renewed.key_pem,
        renewed.cert_pem,
        ca.key.clone(),
        ca.cert.clone(),
    )
    .await?;
    tracing::info!(ca = %auth.name, new = %renewed.serial, "responder certificate renewed through the CA service");
    Ok(())
}
