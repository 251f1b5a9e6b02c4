//! Issuing a mobile public-official ID, as `gpki credential issue` and the CA
//! service's `POST /v1/credentials` both do: the signer in force, an index taken
//! on the status list (recorded `pending` before anything is signed), the
//! credential signed, then recorded `valid` with its digest and audited.

use gpki_credentials::{mdoc, model, sdjwt, IssuerKey, OfficialId, PublicKey, StatusRef, Validity};
use gpki_pki::{Error, Result};
use gpki_store::{AuditEvent, CredentialRecord, NewCredential, StatusListRecord, Store};
use serde_json::json;

pub use gpki_credentials::model::Format;

/// What to issue.
pub struct Order<'a> {
    pub id: &'a OfficialId,
    pub holder: &'a PublicKey,
    pub format: Format,
    pub status_list: &'a str,
    /// The SD-JWT VC `iss`: a URI SAN of the signer certificate.
    pub issuer: &'a str,
    pub valid_days: i64,
    /// Credentials of the same official this one replaces, revoked `replaced`.
    pub replaces: &'a [i64],
    /// Also revoke `replaced` every other valid ID of this official (one ID per
    /// official: the RA's offers).
    pub replace_earlier: bool,
    /// The ID ends no later than this (the official's own certificate).
    pub not_after: Option<i64>,
    /// The official's certificate (its store row): still issued and unexpired
    /// in the transaction that makes the ID valid, so a revocation that landed
    /// after the official was checked leaves no valid ID behind.
    pub official_cert: Option<i64>,
    /// The RA's offer this issues: marked `issued` in the same transaction.
    pub offer: Option<(i64, AuditEvent)>,
    /// Who issues, for the audit record.
    pub actor: &'a str,
    /// Added to the audit record (the RA's offer, say).
    pub context: serde_json::Value,
}

/// A credential issued.
pub struct Issued {
    pub record: CredentialRecord,
    pub list: StatusListRecord,
    pub bytes: Vec<u8>,
    pub valid_until: i64,
}

/// Issues `order` with `key`, whose certificate must be in force in the store with
/// every CA above it now: what is signed now must verify now.
pub async fn issue(store: &Store, key: &IssuerKey, order: &Order<'_>) -> Result<Issued> {
    let now = gpki_pki::time::now();
    let signer_row = store
        .signer_in_force(&key.chain()[0], "credential signer")
        .await?;
    let id = order.id;
    // SD-JWT VC: with x5c, `iss` must be a URI SAN of the signer certificate.
    if order.format == Format::SdJwt && !key.uri_sans()?.iter().any(|u| u == order.issuer) {
        return Err(Error::policy(format!(
            "issuer {} is not a URI subjectAltName of the signer certificate",
            order.issuer
        )));
    }
    let list = store.status_list_by_name(order.status_list).await?;
    store
        .check_replaceable(&id.employee_number, model::DOC_TYPE, order.replaces)
        .await?;
    // The ID expires at the end of its expiry date in Korea (UTC+9).
    let kst = time::UtcOffset::from_hms(9, 0, 0).expect("UTC+9");
    let end_of_expiry = id
        .expiry_date
        .with_hms(23, 59, 59)
        .map(|t| t.assume_offset(kst).unix_timestamp())
        .map_err(|e| Error::malformed(format!("expiry_date: {e}")))?;
    let valid_until = now
        .saturating_add(order.valid_days.saturating_mul(86_400))
        .min(key.not_after()?)
        .min(end_of_expiry)
        .min(order.not_after.unwrap_or(i64::MAX));
    if valid_until <= now {
        return Err(Error::policy(
            "the credential would not be valid: the ID, the signer certificate or the official's certificate ends now",
        ));
    }
    let validity = Validity {
        signed: now,
        valid_from: now,
        valid_until,
    };
    let record = store
        .allocate_credential(
            &NewCredential {
                list_id: list.id,
                format: order.format.as_str().into(),
                doc_type: model::DOC_TYPE.into(),
                subject: id.employee_number.clone(),
                holder_jkt: order.holder.thumbprint(),
                signer_serial: signer_row.serial.clone(),
                valid_until,
            },
            random_index,
        )
        .await?;
    let status = StatusRef {
        uri: list.uri.clone(),
        idx: record.idx as u64,
    };
    let bytes = match order.format {
        Format::Mdoc => mdoc::issue(id, order.holder, &status, validity, key)?,
        Format::SdJwt => {
            sdjwt::issue(id, order.holder, &status, validity, order.issuer, key)?.into_bytes()
        }
    };
    let digest = hex::encode(openssl::sha::sha256(&bytes));
    let mut detail = json!({
        "format": order.format.as_str(),
        "doc_type": model::DOC_TYPE,
        "subject": id.employee_number,
        "status_list": list.name,
        "idx": record.idx,
        "holder_jkt": record.holder_jkt,
        "signer_serial": record.signer_serial,
        "valid_until": valid_until,
        "digest": digest,
        "replaces": order.replaces,
    });
    if let (Some(d), Some(c)) = (detail.as_object_mut(), order.context.as_object()) {
        d.extend(c.clone());
    }
    let record = store
        .mark_credential_issued(
            record.id,
            &digest,
            &gpki_store::IssuedWith {
                replaces: order.replaces,
                replace_earlier: order.replace_earlier,
                official_cert: order.official_cert,
                offer: order.offer.as_ref().map(|(id, a)| (*id, a)),
            },
            &AuditEvent::new(
                order.actor,
                "credential.issue",
                format!("credential:{}", record.id),
                detail,
            ),
        )
        .await?;
    Ok(Issued {
        record,
        list,
        bytes,
        valid_until,
    })
}

/// A uniformly random index in `0..size`, from OpenSSL's CSPRNG (rejection
/// sampling, so no index is likelier than another).
fn random_index(size: i64) -> i64 {
    let size = size.max(1) as u64;
    let zone = u64::MAX - (u64::MAX % size);
    loop {
        let mut b = [0u8; 8];
        if openssl::rand::rand_bytes(&mut b).is_err() {
            // The store rejects an out-of-range draw by name.
            return -1;
        }
        let x = u64::from_le_bytes(b);
        if x < zone {
            return (x % size) as i64;
        }
    }
}
