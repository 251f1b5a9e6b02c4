//! CRLs (RFC 5280 §5). The entry list is encoded straight into one buffer, entry by
//! entry, so a CRL of a million entries costs its DER size in memory, not a million
//! decoded structures.

use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_DELTA_CRL_INDICATOR,
    ID_CE_INVALIDITY_DATE, ID_CE_ISSUING_DISTRIBUTION_POINT,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Ia5String, OctetString, Uint};
use der::Encode;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::ext::Extension;
use x509_cert::name::Name;

use crate::error::{Error, Result};
use crate::signed::{header_len, push_header, push_tlv};
use crate::signer::SignatureAlgorithm;

/// RFC 5280 §5.3.1 reason codes, as the CLI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    RemoveFromCrl,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 10] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    pub fn code(self) -> i64 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::RemoveFromCrl => 8,
            RevocationReason::PrivilegeWithdrawn => 9,
            RevocationReason::AaCompromise => 10,
        }
    }

    pub fn from_code(code: i64) -> Option<RevocationReason> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The RFC 5280 ASN.1 name (`keyCompromise`).
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::RemoveFromCrl => "removeFromCRL",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
            RevocationReason::AaCompromise => "aACompromise",
        }
    }

    fn to_x509(self) -> CrlReason {
        match self {
            RevocationReason::Unspecified => CrlReason::Unspecified,
            RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
            RevocationReason::CaCompromise => CrlReason::CaCompromise,
            RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
            RevocationReason::Superseded => CrlReason::Superseded,
            RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
            RevocationReason::CertificateHold => CrlReason::CertificateHold,
            RevocationReason::RemoveFromCrl => CrlReason::RemoveFromCRL,
            RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
            RevocationReason::AaCompromise => CrlReason::AaCompromise,
        }
    }
}

impl std::fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RevocationReason {
    type Err = Error;
    /// Accepts the RFC name in any case, with or without dashes (`key-compromise`).
    fn from_str(s: &str) -> Result<Self> {
        let norm: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().to_ascii_lowercase() == norm)
            .ok_or_else(|| {
                Error::malformed(format!(
                    "unknown revocation reason `{s}` (one of {})",
                    Self::ALL
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }
}

/// One revoked certificate on a CRL.
#[derive(Debug, Clone)]
pub struct CrlEntry {
    /// Magnitude bytes of the serial, big-endian.
    pub serial: Vec<u8>,
    pub revoked_at: i64,
    pub reason: RevocationReason,
    pub invalidity_date: Option<i64>,
}

/// Which certificates the CRL covers (issuingDistributionPoint scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlScope {
    /// End-entity certificates only (a CA with pathLenConstraint 0).
    UserCerts,
    /// Both: a CA that signs CA certificates and end entities. The root is one: it
    /// signs subordinate CAs and its delegated OCSP responders, so an ARL with
    /// onlyContainsCACerts would leave a revoked responder certificate off every CRL.
    All,
}

/// Everything about a CRL but its entries and signature.
#[derive(Debug, Clone)]
pub struct CrlHeader {
    pub issuer: Name,
    pub issuer_key_id: Vec<u8>,
    pub algorithm: SignatureAlgorithm,
    pub this_update: i64,
    pub next_update: i64,
    pub crl_number: u64,
    /// For a delta CRL: the CRL number of the full CRL it is based on.
    pub delta_base: Option<u64>,
    pub distribution_point: Option<String>,
    pub scope: CrlScope,
    /// Where the delta CRLs of this (complete) CRL are (freshestCRL, RFC 5280 §5.2.6).
    pub freshest: Option<String>,
}

/// Where the delta CRLs of a CA whose full CRL is at `crl_url` are served:
/// `…/NAME.crl` → `…/NAME.delta.crl` (CA names hold no dot, so this names no CA).
pub fn delta_url(crl_url: &str) -> String {
    match crl_url.strip_suffix(".crl") {
        Some(base) => format!("{base}.delta.crl"),
        None => format!("{crl_url}.delta"),
    }
}

fn ext<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> Result<Extension> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// The DER of one revokedCertificates entry (RFC 5280 §5.1.2.6).
pub fn encode_entry(e: &CrlEntry) -> Result<Vec<u8>> {
    let mut entry = Vec::with_capacity(64);
    entry.extend_from_slice(&Uint::new(&e.serial)?.to_der()?);
    entry.extend_from_slice(&crate::time::x509_time(e.revoked_at)?.to_der()?);
    let mut entry_exts = Vec::new();
    // RFC 5280 §5.3.1: omit the reason code rather than use unspecified.
    if e.reason != RevocationReason::Unspecified {
        entry_exts.extend_from_slice(
            &ext(
                const_oid::db::rfc5280::ID_CE_CRL_REASONS,
                false,
                &e.reason.to_x509(),
            )?
            .to_der()?,
        );
    }
    if let Some(d) = e.invalidity_date {
        entry_exts.extend_from_slice(
            &ext(
                ID_CE_INVALIDITY_DATE,
                false,
                &crate::time::generalized_time(d)?,
            )?
            .to_der()?,
        );
    }
    if !entry_exts.is_empty() {
        push_tlv(&mut entry, 0x30, &entry_exts);
    }
    let mut out = Vec::with_capacity(entry.len() + 4);
    push_tlv(&mut out, 0x30, &entry);
    Ok(out)
}

/// A tbsCertList as [`build_tbs`] encodes it: the only bytes [`sign`] takes, so
/// no other structure (a tbsCertificate no lint saw) is signed as a CRL.
///
/// ```compile_fail
/// fn sign_raw(key: &dyn gpki_pki::signer::Signer, tbs: &[u8]) {
///     let _ = gpki_pki::crl::sign(key, tbs); // expects &TbsCertList: does not build
/// }
/// ```
#[derive(Debug, Clone)]
pub struct TbsCertList(Vec<u8>);

impl TbsCertList {
    /// Its DER.
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

/// Signs a tbsCertList from [`build_tbs`]: the CRL's DER.
pub fn sign(key: &dyn crate::signer::Signer, tbs: &TbsCertList) -> Result<Vec<u8>> {
    let signature = key.sign(&tbs.0)?;
    crate::signed::assemble(&tbs.0, key.algorithm(), &signature)
}

/// Encodes the tbsCertList around `entries`, the concatenated DER of `count` entries
/// from [`encode_entry`].
pub fn build_tbs(header: &CrlHeader, entries: &[u8], count: usize) -> Result<TbsCertList> {
    let mut head = Vec::with_capacity(512);
    // version v2 (RFC 5280 §5.1.2.1: required, as extensions are present)
    head.extend_from_slice(&[0x02, 0x01, 0x01]);
    head.extend_from_slice(&header.algorithm.identifier().to_der()?);
    head.extend_from_slice(&header.issuer.to_der()?);
    head.extend_from_slice(&crate::time::x509_time(header.this_update)?.to_der()?);
    head.extend_from_slice(&crate::time::x509_time(header.next_update)?.to_der()?);
    let exts = crl_extensions(header)?;
    let list_len = if count > 0 {
        header_len(entries.len()) + entries.len()
    } else {
        0
    };
    let body_len = head.len() + list_len + exts.len();
    // One allocation of the final size: the entries are copied once.
    let mut tbs = Vec::with_capacity(header_len(body_len) + body_len);
    push_header(&mut tbs, 0x30, body_len);
    tbs.extend_from_slice(&head);
    if count > 0 {
        push_header(&mut tbs, 0x30, entries.len());
        tbs.extend_from_slice(entries);
    }
    tbs.extend_from_slice(&exts);
    debug_assert_eq!(tbs.len(), tbs.capacity());
    Ok(TbsCertList(tbs))
}

/// `[0] EXPLICIT Extensions` of a CRL: AKI, CRL number, delta indicator, IDP.
fn crl_extensions(header: &CrlHeader) -> Result<Vec<u8>> {
    let mut exts = vec![
        ext(
            ID_CE_AUTHORITY_KEY_IDENTIFIER,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(header.issuer_key_id.clone())?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
        ext(
            ID_CE_CRL_NUMBER,
            false,
            &Uint::new(&header.crl_number.to_be_bytes())?,
        )?,
    ];
    if let Some(base) = header.delta_base {
        // RFC 5280 §5.2.4: deltaCRLIndicator is critical.
        exts.push(ext(
            ID_CE_DELTA_CRL_INDICATOR,
            true,
            &Uint::new(&base.to_be_bytes())?,
        )?);
    }
    // RFC 5280 §5.2.5: issuingDistributionPoint is critical.
    let idp = IssuingDistributionPoint {
        distribution_point: match &header.distribution_point {
            Some(u) => Some(DistributionPointName::FullName(vec![
                GeneralName::UniformResourceIdentifier(Ia5String::new(u)?),
            ])),
            None => None,
        },
        only_contains_user_certs: header.scope == CrlScope::UserCerts,
        only_contains_ca_certs: false,
        only_some_reasons: None,
        indirect_crl: false,
        only_contains_attribute_certs: false,
    };
    exts.push(ext(ID_CE_ISSUING_DISTRIBUTION_POINT, true, &idp)?);
    if let (Some(url), None) = (&header.freshest, header.delta_base) {
        // RFC 5280 §5.2.6: freshestCRL, in complete CRLs only, MUST be non-critical.
        exts.push(ext(
            const_oid::db::rfc5280::ID_CE_FRESHEST_CRL,
            false,
            &x509_cert::ext::pkix::FreshestCrl(vec![
                x509_cert::ext::pkix::crl::dp::DistributionPoint {
                    distribution_point: Some(DistributionPointName::FullName(vec![
                        GeneralName::UniformResourceIdentifier(Ia5String::new(url)?),
                    ])),
                    reasons: None,
                    crl_issuer: None,
                },
            ]),
        )?);
    }
    let mut ext_seq = Vec::new();
    for e in &exts {
        ext_seq.extend_from_slice(&e.to_der()?);
    }
    let mut wrapped = Vec::new();
    push_tlv(&mut wrapped, 0x30, &ext_seq);
    let mut out = Vec::with_capacity(wrapped.len() + 4);
    push_tlv(&mut out, 0xa0, &wrapped);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;
    use x509_cert::crl::CertificateList;

    #[test]
    fn hand_encoded_crl_decodes_with_x509_cert() {
        let header = CrlHeader {
            issuer: crate::name::parse("CN=Test CA, O=Government of Korea, C=KR").unwrap(),
            issuer_key_id: vec![1; 20],
            algorithm: SignatureAlgorithm::EcdsaSha256,
            this_update: 1_800_000_000,
            next_update: 1_800_086_400,
            crl_number: 7,
            delta_base: Some(6),
            distribution_point: Some("http://crl.example/test.crl".into()),
            scope: CrlScope::UserCerts,
            freshest: None,
        };
        let entries: Vec<CrlEntry> = (1..300u32)
            .map(|i| CrlEntry {
                serial: i.to_be_bytes().to_vec(),
                revoked_at: 1_799_000_000,
                reason: RevocationReason::ALL[(i % 10) as usize],
                invalidity_date: (i % 2 == 0).then_some(1_798_000_000),
            })
            .collect();
        let list: Vec<u8> = entries
            .iter()
            .flat_map(|e| encode_entry(e).unwrap())
            .collect();
        let tbs = build_tbs(&header, &list, entries.len()).unwrap();
        let crl = crate::signed::assemble(tbs.der(), header.algorithm, &[0xAB; 70]).unwrap();
        let parsed = CertificateList::from_der(&crl).unwrap();
        let revoked = parsed.tbs_cert_list.revoked_certificates.unwrap();
        assert_eq!(revoked.len(), 299);
        assert_eq!(revoked[1].serial_number.as_bytes(), &[2]);
        assert_eq!(parsed.tbs_cert_list.crl_extensions.unwrap().len(), 4);
    }

    #[test]
    fn reasons_parse_by_rfc_name() {
        assert_eq!(
            "keyCompromise".parse::<RevocationReason>().unwrap(),
            RevocationReason::KeyCompromise
        );
        assert_eq!(
            "certificate-hold".parse::<RevocationReason>().unwrap(),
            RevocationReason::CertificateHold
        );
        assert!("stolen".parse::<RevocationReason>().is_err());
    }
}
