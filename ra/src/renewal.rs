//! Renewal: the same key within the window, a new CSR, or a pair's new km key.

use gpki_pki::Error;
use gpki_service::api::parse;
use gpki_store::NewRequest;
use serde_json::json;

use crate::auth::{require_admin, Operator};
use crate::decide::{decide, Ask, Decision};
use crate::forward::decide_alone;
use crate::requests::{check_key, identity_record, sha256_hex, Recorded, Reply};
use crate::{RenewalBody, State};

pub(crate) async fn renew(state: &State, op: &Operator, body: &[u8]) -> Reply {
    let b: RenewalBody = parse(body)?;
    check_key(&b.idempotency_key)?;
    let cert = state.store.scoped_certificate(&op.ra, &b.serial).await?;
    if cert.profile == "ra-operator" {
        require_admin(op)?;
    }
    // A new key (a CSR, or the pair's new km key, which the CA makes and
    // delivers) is a new binding of the official's name: it needs what a first
    // issuance of the profiles it makes needs, a second operator or an identity
    // verification, and waits for them as a submission does.
    let ask = Ask {
        kind: "renew",
        profile: &cert.profile,
        km: b.km_transport.is_some(),
        new_key: b.csr.is_some() || b.km_transport.is_some(),
        identity_seen: b.identity.is_some(),
        renews: Some(cert.not_after),
    };
    let decision = decide(&op.ra, &state.profiles, &ask, gpki_pki::time::now())?;
    if let Decision::TooEarly { opens } = decision {
        return Err(Error::policy(format!(
            "certificate {} may be renewed from {} ({} days before it expires), not earlier",
            cert.serial,
            gpki_pki::time::rfc3339(opens),
            op.ra.renew_window_days
        )));
    }
    if let Some(csr) = &b.csr {
        let csr = gpki_pki::csr::parse_and_verify(csr.as_bytes())?;
        state
            .profiles
            .get(&cert.profile)?
            .allows_key(gpki_pki::KeyType::of_spki(csr.spki_der())?)?;
    }
    // A pair is renewed together, from its signing certificate.
    if let Some(pair) = state.store.pair_of(cert.id).await? {
        if cert.profile == gpki_service::ca_api::KM_PROFILE {
            let sign = state.store.certificate_by_id(pair).await?;
            return Err(Error::policy(format!(
                "km certificate {} is renewed with its pair: renew official-sign certificate {}",
                cert.serial, sign.serial
            )));
        }
        match &b.km_transport {
            Some(t) => {
                gpki_service::ca_api::check_transport(t)?;
            }
            None => {
                return Err(Error::policy(format!(
                    "certificate {} has a km pair; its renewal renews the pair, with a new km key sealed to a transport key (km_transport)",
                    cert.serial
                )))
            }
        }
    } else if b.km_transport.is_some() {
        return Err(Error::policy(format!(
            "certificate {} has no km pair to renew",
            cert.serial
        )));
    }
    let identity = b
        .identity
        .as_ref()
        .map(|i| identity_record(op, i))
        .transpose()?;
    let alone = decision == Decision::Alone;
    let (r, created) = state
        .store
        .submit_request(
            &NewRequest {
                profile: Some(cert.profile.clone()),
                subject: Some(cert.subject.clone()),
                csr: b.csr.clone().map(String::into_bytes),
                target_cert_id: Some(cert.id),
                submitted_by: Some(op.record.id),
                approved_by: alone.then_some(op.record.id),
                km_transport: b.km_transport.clone(),
                ..NewRequest::new(op.ra.id, &b.idempotency_key, "renew", sha256_hex(&[
                    "renew",
                    &cert.serial,
                    b.csr.as_deref().unwrap_or(""),
                    b.km_transport.as_deref().unwrap_or(""),
                ]))
            },
            identity.as_ref(),
            &op.event(
                "ra.request.submit",
                "ra-request",
                json!({ "kind": "renew", "serial": cert.serial, "new_key": ask.new_key, "km": ask.km, "identity": identity, "decided_alone": alone }),
            ),
        )
        .await?;
    let recorded = Recorded::of(&r, created);
    let s = if r.status == "submitted"
        && !decide(&op.ra, &state.profiles, &Ask::of(&r), gpki_pki::time::now())?
            .waits()?
            .is_empty()
    {
        // A second operator approves it, or the identity verification is
        // recorded first (POST /v1/requests/ID/identity, then approve).
        r.into()
    } else {
        decide_alone(state, op, r).await?
    };
    recorded.reply(state, &s).await
}
