//! Mobile IDs issued through an RA: the bodies of the RA's and the CA's credential
//! routes, and the checks both ends make (the CA trusts the RA for none of them).
//!
//! An official the RA knows is one holding an official-sign certificate in force
//! that this RA requested (the certificate's request key names the RA) and that
//! still falls in its scope. The ID's name and institution come from that
//! certificate's subject, never from the request; the operator gives the rest.

use gpki_credentials::OfficialId;
use gpki_pki::{Error, ErrorKind, Result};
use gpki_store::{CertificateRecord, RaRecord};
use serde::{Deserialize, Serialize};

/// The profile whose certificates make an official known to an RA.
pub const OFFICIAL_PROFILE: &str = "official-sign";

/// The official, by their official-sign certificate from the RA's CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Official {
    /// Its serial (hex).
    pub serial: String,
}

/// What the operator gives; name, employee number and institution come from the
/// official's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferedAttributes {
    pub department: String,
    pub position: String,
    /// `YYYY-MM-DD`.
    pub issue_date: String,
    /// `YYYY-MM-DD`.
    pub expiry_date: String,
}

/// `POST /v1/credentials/offers` (RA): an offer of a mobile ID to an official.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferBody {
    pub idempotency_key: String,
    /// `mdoc` or `sd-jwt`.
    pub format: String,
    pub official: Official,
    pub attributes: OfferedAttributes,
    /// How the operator saw the official (face-to-face or contact-free, and the
    /// document), as for an official-sign request: audited with the offer.
    pub identity: IdentitySeen,
}

/// An identity verification as the operator reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySeen {
    /// `face-to-face` or `contact-free`.
    pub method: String,
    pub document: String,
}

/// The RA's answer to an offer: the nonce the holder's wallet signs, for whom.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfferReply {
    pub offer: i64,
    pub status: String,
    /// The nonce to sign (OpenID4VCI `c_nonce`).
    pub nonce: String,
    /// The proof's `aud`: the credential issuer's identifier.
    pub audience: String,
    pub expires_at: i64,
    #[serde(default)]
    pub replayed: bool,
}

/// `POST /v1/credentials/offers/ID/issue` (RA): the holder's proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBody {
    /// The OpenID4VCI `jwt` proof over the offer's nonce.
    pub proof: String,
}

/// `POST /v1/credentials` (CA), from the RA service hosting `ra`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialBody {
    pub ra: String,
    pub offer: i64,
    pub proof: String,
}

/// A credential issued, as the CA and then the RA answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialReply {
    pub id: i64,
    pub offer: i64,
    pub format: String,
    /// The credential: SD-JWT text, or the mdoc's IssuerSigned CBOR in base64.
    pub credential: String,
    pub status_list: String,
    pub idx: i64,
    pub holder_jkt: String,
    pub valid_until: i64,
}

/// An official an RA knows, as their certificate names them.
#[derive(Debug, Clone)]
pub struct KnownOfficial {
    pub cert: CertificateRecord,
    /// The CN without the `(IDENTIFIER)` GPKI appends.
    pub name: String,
    /// The identifier in the CN's parentheses.
    pub employee_number: String,
    /// The last OU.
    pub institution: String,
}

/// The official-sign certificate `row`, when it is in force now, was requested
/// through `ra` and falls in its scope, with what its subject says of the official:
/// a GPKI official's CN is `NAME(IDENTIFIER)`, the institution the last OU.
pub async fn known_official(
    store: &impl gpki_store::InForce,
    ra: &RaRecord,
    row: CertificateRecord,
    now: i64,
) -> Result<KnownOfficial> {
    let unknown = |why: String| {
        Error::new(
            ErrorKind::Unauthorized,
            format!("not an official RA `{}` knows: {why}", ra.name),
        )
    };
    if row.profile != OFFICIAL_PROFILE {
        return Err(unknown(format!(
            "certificate {} is of profile {}, not {OFFICIAL_PROFILE}",
            row.serial, row.profile
        )));
    }
    let prefix = crate::ca_api::ca_request_key(&ra.name, "");
    if !row
        .request_key
        .as_deref()
        .is_some_and(|k| k.starts_with(&prefix))
    {
        return Err(unknown(format!(
            "certificate {} was not requested through this RA",
            row.serial
        )));
    }
    let der = row
        .der
        .as_deref()
        .ok_or_else(|| unknown(format!("certificate {} is not signed", row.serial)))?;
    store
        .certificate_in_force(der, now)
        .await
        .map_err(|e| unknown(format!("certificate {}: {}", row.serial, e.detail)))?;
    ra.check_scope(OFFICIAL_PROFILE, &row.subject)?;
    let cert = gpki_pki::cert::decode(der)?;
    let attrs = gpki_pki::name::attributes(&cert.tbs_certificate.subject);
    let Some(o) = gpki_pki::name::official(&attrs) else {
        return Err(unknown(format!(
            "certificate {} does not name the official as CN=NAME(IDENTIFIER) with an OU",
            row.serial
        )));
    };
    Ok(KnownOfficial {
        cert: row,
        name: o.name,
        employee_number: o.employee_number,
        institution: o.institution,
    })
}

/// The ID: name, employee number and institution from the certificate, the rest
/// as offered.
pub fn official_id(attributes: &OfferedAttributes, official: &KnownOfficial) -> Result<OfficialId> {
    let json = serde_json::json!({
        "name": official.name,
        "employee_number": official.employee_number,
        "institution": official.institution,
        "department": attributes.department,
        "position": attributes.position,
        "issue_date": attributes.issue_date,
        "expiry_date": attributes.expiry_date,
    });
    OfficialId::from_json(json.to_string().as_bytes(), None)
}
