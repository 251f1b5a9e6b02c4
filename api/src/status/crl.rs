//! CRLs (RFC 5280 §5.3 and §6.3): the full CRL of a certificate's distribution
//! point, verified as its issuer's and current, read for the certificates it
//! covers (its scope and partition), and kept until its nextUpdate and at most
//! `max_cache_age`. Delta CRLs, indirect CRLs and CRLs of some reasons only are
//! refused: none of them alone says a certificate is good.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use der::{Decode, Encode};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::Extension;
use x509_cert::Certificate;

use super::{is_ca, read_limited, reason_name, Answer, Source, StatusChecker};

pub(super) struct Crl {
    issuer_key: [u8; 32],
    /// The CRL's issuingDistributionPoint names: it covers only certificates that
    /// name one of them (RFC 5280 §6.3.3 b.2.i: a partition).
    partition: Option<Vec<String>>,
    this_update: i64,
    next_update: i64,
    fetched_at: i64,
    revoked: HashMap<Vec<u8>, (String, i64)>,
    only_ca: bool,
    only_user: bool,
}

impl StatusChecker {
    /// The status of `decoded` from the first of its distribution points whose
    /// CRL is current, verified and covers it; why each failed otherwise.
    pub(super) async fn crl(
        &self,
        decoded: &Certificate,
        issuer: &Certificate,
        now: i64,
    ) -> std::result::Result<Answer, String> {
        let urls = distribution_points(decoded);
        if urls.is_empty() {
            return Err("the certificate names no http CRL distribution point".into());
        }
        let is_ca = is_ca(decoded);
        let issuer_name = issuer
            .tbs_certificate
            .subject
            .to_der()
            .map_err(|e| e.to_string())?;
        let issuer_key = openssl::sha::sha256(
            issuer
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        );
        let mut why = Vec::new();
        for url in &urls {
            let crl = match self
                .current_crl(url, issuer, &issuer_name, issuer_key, now)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    why.push(format!("{url}: {e}"));
                    continue;
                }
            };
            if let Err(e) = covers(&crl, is_ca, &urls) {
                why.push(format!("{url}: {e}"));
                continue;
            }
            let serial = decoded.tbs_certificate.serial_number.as_bytes();
            let (status, revoked_at) = match crl.revoked.get(serial) {
                Some((reason, at)) => (reason.clone(), Some(*at)),
                None => ("good".into(), None),
            };
            return Ok(Answer {
                status,
                revoked_at,
                source: Source::Crl,
                url: url.clone(),
                this_update: crl.this_update,
                next_update: Some(crl.next_update),
                fetched_at: crl.fetched_at,
            });
        }
        Err(why.join("; "))
    }

    /// The CRL at `url`: the one kept if it is the issuer's (same key), before its
    /// nextUpdate and younger than `max_cache_age`; else fetched (one fetch at a
    /// time per URL), verified and kept unless a newer one is held.
    async fn current_crl(
        &self,
        url: &str,
        issuer: &Certificate,
        issuer_name: &[u8],
        issuer_key: [u8; 32],
        now: i64,
    ) -> std::result::Result<Arc<Crl>, String> {
        let fresh = |c: &Arc<Crl>| {
            c.issuer_key == issuer_key
                && now <= c.next_update
                && now - c.fetched_at < self.policy.max_cache_age
        };
        let held = || {
            self.crls
                .lock()
                .expect("CRL cache")
                .get(url)
                .cloned()
                .filter(fresh)
        };
        if let Some(c) = held() {
            return Ok(c);
        }
        let _one = self.in_flight(url.as_bytes().to_vec()).await;
        // Another request may have fetched it while this one waited.
        if let Some(c) = held() {
            return Ok(c);
        }
        let c = Arc::new(
            self.fetch_crl(url, issuer, issuer_name, issuer_key, now)
                .await?,
        );
        let mut crls = self.crls.lock().expect("CRL cache");
        if crls
            .get(url)
            .is_none_or(|held| held.this_update <= c.this_update)
        {
            crls.insert(url.to_string(), c.clone());
        }
        Ok(c)
    }

    /// Fetches the CRL at `url` (PEM or DER, at most `max_crl_bytes`) and parses
    /// it as `issuer`'s full CRL, current at `now`.
    async fn fetch_crl(
        &self,
        url: &str,
        issuer: &Certificate,
        issuer_name: &[u8],
        issuer_key: [u8; 32],
        now: i64,
    ) -> std::result::Result<Crl, String> {
        let reply = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !reply.status().is_success() {
            return Err(format!("HTTP {}", reply.status()));
        }
        let body = read_limited(reply, self.policy.max_crl_bytes).await?;
        self.counters.crl_fetched.fetch_add(1, Ordering::Relaxed);
        let der_bytes =
            gpki_pki::pem::decode_pem_or_der(&body, &["X509 CRL"]).map_err(|e| e.detail)?;
        parse_crl(
            &der_bytes,
            issuer,
            issuer_name,
            issuer_key,
            now,
            self.policy.skew,
        )
    }
}

/// Refuses a CRL that does not cover the certificate: one of CA certificates only
/// for an end entity's, of end entities only for a CA's, or a partition (its
/// issuingDistributionPoint) that none of the certificate's `urls` names.
fn covers(crl: &Crl, is_ca: bool, urls: &[String]) -> std::result::Result<(), String> {
    if (crl.only_ca && !is_ca) || (crl.only_user && is_ca) {
        return Err("the CRL does not cover this kind of certificate".into());
    }
    if let Some(names) = &crl.partition {
        if !names.iter().any(|n| urls.contains(n)) {
            return Err(format!(
                "the CRL is the partition {}, which this certificate does not name",
                names.join(", ")
            ));
        }
    }
    Ok(())
}

/// The http(s) URIs of a certificate's CRL distribution points.
fn distribution_points(c: &Certificate) -> Vec<String> {
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    let Ok(Some((_, dps))) =
        gpki_pki::cert::find_extension::<x509_cert::ext::pkix::CrlDistributionPoints>(
            &c.tbs_certificate,
            const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS,
        )
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for dp in dps.0 {
        if let Some(DistributionPointName::FullName(names)) = dp.distribution_point {
            for n in names {
                if let GeneralName::UniformResourceIdentifier(u) = n {
                    let u = u.as_str().to_string();
                    if u.starts_with("http://") || u.starts_with("https://") {
                        out.push(u);
                    }
                }
            }
        }
    }
    out
}

/// A full CRL from `issuer`, verified and current at `now`.
fn parse_crl(
    der_bytes: &[u8],
    issuer: &Certificate,
    issuer_name: &[u8],
    issuer_key: [u8; 32],
    now: i64,
    skew: i64,
) -> std::result::Result<Crl, String> {
    let list = CertificateList::from_der(der_bytes).map_err(|e| format!("not a CRL: {e}"))?;
    let tbs = &list.tbs_cert_list;
    issued_by(tbs, issuer_name)?;
    algorithms_agree(&list)?;
    issuer_may_sign_crls(issuer)?;
    signed_by_issuer(der_bytes, &list, issuer)?;
    let (this_update, next_update) = current_at(tbs, now, skew)?;
    let scope = full_crl_scope(tbs)?;
    let revoked = revoked_serials(tbs)?;
    Ok(Crl {
        issuer_key,
        partition: scope.partition,
        this_update,
        next_update,
        fetched_at: now,
        revoked,
        only_ca: scope.only_ca,
        only_user: scope.only_user,
    })
}

/// Refuses a CRL that names another issuer than `issuer_name` (DER).
fn issued_by(tbs: &TbsCertList, issuer_name: &[u8]) -> std::result::Result<(), String> {
    if tbs.issuer.to_der().map_err(|e| e.to_string())? != issuer_name {
        return Err("the CRL is not the issuer's".into());
    }
    Ok(())
}

/// Refuses a CRL whose outer signatureAlgorithm is not the one its signed
/// tbsCertList names (RFC 5280 §5.1.1.2): the algorithm is part of what is signed.
fn algorithms_agree(list: &CertificateList) -> std::result::Result<(), String> {
    if list.signature_algorithm != list.tbs_cert_list.signature {
        return Err("the CRL's two signature algorithms differ".into());
    }
    Ok(())
}

/// Refuses an issuer whose key usage, when present, lacks cRLSign: its key may
/// not vouch for revocations.
fn issuer_may_sign_crls(issuer: &Certificate) -> std::result::Result<(), String> {
    let crl_sign = gpki_pki::cert::find_extension::<x509_cert::ext::pkix::KeyUsage>(
        &issuer.tbs_certificate,
        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
    )
    .map_err(|e| e.detail)?
    .is_none_or(|(_, ku)| ku.crl_sign());
    if !crl_sign {
        return Err("the issuer's key may not sign CRLs (no cRLSign)".into());
    }
    Ok(())
}

/// Checks the CRL's signature over its tbsCertList as encoded (not re-encoded)
/// with the issuer's public key.
fn signed_by_issuer(
    der_bytes: &[u8],
    list: &CertificateList,
    issuer: &Certificate,
) -> std::result::Result<(), String> {
    let outer = gpki_pki::tlv::only(der_bytes, 0x30, "CRL").map_err(|e| e.detail)?;
    let tbs_raw = gpki_pki::tlv::Reader::new(outer.value)
        .expect(0x30, "tbsCertList")
        .map_err(|e| e.detail)?
        .raw;
    let ok = gpki_pki::signer::verify_with_identifier(
        &issuer.tbs_certificate.subject_public_key_info,
        &list.signature_algorithm,
        tbs_raw,
        list.signature.raw_bytes(),
    )
    .map_err(|e| e.detail)?;
    if !ok {
        return Err("the CRL's signature is not the issuer's".into());
    }
    Ok(())
}

/// The CRL's thisUpdate and nextUpdate, refused without a nextUpdate (it could be
/// kept forever), issued after `now` beyond the skew, or stale at `now`.
fn current_at(tbs: &TbsCertList, now: i64, skew: i64) -> std::result::Result<(i64, i64), String> {
    let this_update = gpki_pki::time::unix_seconds(&tbs.this_update);
    let next_update = tbs
        .next_update
        .as_ref()
        .map(gpki_pki::time::unix_seconds)
        .ok_or("the CRL has no nextUpdate")?;
    if this_update > now + skew {
        return Err("the CRL is not yet valid".into());
    }
    if now > next_update {
        return Err(format!(
            "the CRL is stale (nextUpdate {})",
            gpki_pki::time::rfc3339(next_update)
        ));
    }
    Ok((this_update, next_update))
}

/// What a full CRL covers, from its issuingDistributionPoint.
#[derive(Default)]
struct Scope {
    only_ca: bool,
    only_user: bool,
    /// The distribution point names of a partition.
    partition: Option<Vec<String>>,
}

/// The CRL's scope from its extensions, refusing a delta CRL (a delta alone is not
/// a status) and any unknown critical extension.
fn full_crl_scope(tbs: &TbsCertList) -> std::result::Result<Scope, String> {
    let mut scope = Scope::default();
    for ext in tbs.crl_extensions.iter().flatten() {
        match ext.extn_id.to_string().as_str() {
            // deltaCRLIndicator: a delta alone is not a status.
            "2.5.29.27" => return Err("a delta CRL is not a full CRL".into()),
            "2.5.29.28" => read_issuing_distribution_point(ext, &mut scope)?,
            _ if ext.critical => {
                return Err(format!(
                    "the CRL has an unknown critical extension {}",
                    ext.extn_id
                ))
            }
            _ => {}
        }
    }
    Ok(scope)
}

/// Reads an issuingDistributionPoint into `scope`, refusing a partial CRL
/// (indirect, of some reasons only, or of attribute certificates: each would read
/// a certificate it does not list as good) and a partition named relative to the
/// issuer, which gpki does not match.
fn read_issuing_distribution_point(
    ext: &Extension,
    scope: &mut Scope,
) -> std::result::Result<(), String> {
    let idp = IssuingDistributionPoint::from_der(ext.extn_value.as_bytes())
        .map_err(|e| format!("issuingDistributionPoint: {e}"))?;
    if idp.indirect_crl || idp.only_some_reasons.is_some() || idp.only_contains_attribute_certs {
        return Err("the CRL is partial (indirect, or some reasons only)".into());
    }
    scope.only_ca = idp.only_contains_ca_certs;
    scope.only_user = idp.only_contains_user_certs;
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    match idp.distribution_point {
        None => {}
        Some(DistributionPointName::FullName(names)) => {
            scope.partition = Some(
                names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::UniformResourceIdentifier(u) => Some(u.as_str().to_string()),
                        _ => None,
                    })
                    .collect(),
            )
        }
        Some(_) => {
            return Err("the CRL names its partition relative to the issuer; not supported".into())
        }
    }
    Ok(())
}

/// The revoked serials with their reason's name and revocation date. An entry of
/// removeFromCRL revokes nothing; an unknown critical entry extension refuses the
/// CRL.
fn revoked_serials(
    tbs: &TbsCertList,
) -> std::result::Result<HashMap<Vec<u8>, (String, i64)>, String> {
    let mut revoked = HashMap::new();
    for entry in tbs.revoked_certificates.iter().flatten() {
        let reason = entry_reason(entry)?;
        // removeFromCRL belongs in deltas; in a full CRL it revokes nothing.
        if reason == 8 {
            continue;
        }
        revoked.insert(
            entry.serial_number.as_bytes().to_vec(),
            (
                reason_name(reason),
                gpki_pki::time::unix_seconds(&entry.revocation_date),
            ),
        );
    }
    Ok(revoked)
}

/// An entry's reason code (0, unspecified, when it has none), refusing an unknown
/// critical entry extension.
fn entry_reason(entry: &RevokedCert) -> std::result::Result<i64, String> {
    let mut reason = 0i64;
    for ext in entry.crl_entry_extensions.iter().flatten() {
        match ext.extn_id.to_string().as_str() {
            "2.5.29.21" => {
                let r = x509_cert::ext::pkix::CrlReason::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| format!("CRL entry reason: {e}"))?;
                reason = r as i64;
            }
            // certificateIssuer belongs to indirect CRLs, refused above.
            _ if ext.critical => {
                return Err(format!(
                    "a CRL entry has an unknown critical extension {}",
                    ext.extn_id
                ))
            }
            _ => {}
        }
    }
    Ok(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpki_pki::crl::{build_tbs, encode_entry, CrlEntry, CrlHeader, CrlScope};
    use gpki_pki::{KeyType, Signer, SoftwareKey};
    use openssl::hash::MessageDigest;

    /// An issuer certificate (self-signed; a CA's key usage, or digitalSignature
    /// only) and its key.
    fn issuer(cn: &str, crl_sign: bool) -> (SoftwareKey, Certificate) {
        let key = SoftwareKey::generate(KeyType::EcP256).unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key.pkey()).unwrap();
        b.set_serial_number(
            &openssl::bn::BigNum::from_u32(1)
                .unwrap()
                .to_asn1_integer()
                .unwrap(),
        )
        .unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let mut ku = openssl::x509::extension::KeyUsage::new();
        ku.critical();
        if crl_sign {
            ku.key_cert_sign().crl_sign();
        } else {
            ku.digital_signature();
        }
        let ext = ku.build().unwrap();
        b.append_extension(ext).unwrap();
        b.sign(key.pkey(), MessageDigest::sha256()).unwrap();
        let der = b.build().to_der().unwrap();
        (key, Certificate::from_der(&der).unwrap())
    }

    /// A CRL by `key` for `issuer`, listing serial 7 (keyCompromise) and serial 8
    /// (removeFromCRL), with `dp` as its issuingDistributionPoint.
    fn crl(
        key: &SoftwareKey,
        issuer: &Certificate,
        next_update: i64,
        dp: Option<&str>,
        delta: bool,
    ) -> Vec<u8> {
        let header = CrlHeader {
            issuer: issuer.tbs_certificate.subject.clone(),
            issuer_key_id: vec![1; 20],
            algorithm: key.algorithm(),
            this_update: gpki_pki::time::now() - 60,
            next_update,
            crl_number: 1,
            delta_base: delta.then_some(0),
            distribution_point: dp.map(str::to_string),
            scope: CrlScope::All,
            freshest: None,
        };
        let mut entries = encode_entry(&CrlEntry {
            serial: vec![7],
            revoked_at: 1_700_000_000,
            reason: gpki_pki::crl::RevocationReason::KeyCompromise,
            invalidity_date: None,
        })
        .unwrap();
        entries.extend(
            encode_entry(&CrlEntry {
                serial: vec![8],
                revoked_at: 1_700_000_000,
                reason: gpki_pki::crl::RevocationReason::RemoveFromCrl,
                invalidity_date: None,
            })
            .unwrap(),
        );
        let tbs = build_tbs(&header, &entries, 2).unwrap();
        gpki_pki::crl::sign(key, &tbs).unwrap()
    }

    fn parse(der: &[u8], issuer: &Certificate) -> std::result::Result<Crl, String> {
        let name = issuer.tbs_certificate.subject.to_der().unwrap();
        let key = openssl::sha::sha256(
            issuer
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        );
        parse_crl(der, issuer, &name, key, gpki_pki::time::now(), 300)
    }

    #[test]
    fn a_crl_is_taken_only_from_its_issuer_current_complete_and_with_its_partition() {
        let (key, ca) = issuer("CA", true);
        let soon = gpki_pki::time::now() + 3600;
        let url = "http://pki.test.go.kr/crl/mois.crl";
        let good = parse(&crl(&key, &ca, soon, Some(url), false), &ca).unwrap();
        assert_eq!(good.revoked.get(&vec![7u8]).unwrap().0, "keyCompromise");
        assert!(
            !good.revoked.contains_key(&vec![8u8]),
            "removeFromCRL revokes nothing"
        );
        assert_eq!(good.partition.as_deref(), Some(&[url.to_string()][..]));
        // Another CA's key, under this CA's name.
        let (other_key, _) = issuer("CA", true);
        let e = parse(&crl(&other_key, &ca, soon, None, false), &ca)
            .err()
            .unwrap();
        assert!(e.contains("not the issuer's"), "{e}");
        // Another CA's CRL.
        let (key2, ca2) = issuer("Other CA", true);
        let e = parse(&crl(&key2, &ca2, soon, None, false), &ca)
            .err()
            .unwrap();
        assert!(e.contains("not the issuer's"), "{e}");
        // Stale, a delta, an issuer without cRLSign.
        let e = parse(&crl(&key, &ca, gpki_pki::time::now() - 1, None, false), &ca)
            .err()
            .unwrap();
        assert!(e.contains("stale"), "{e}");
        let e = parse(&crl(&key, &ca, soon, None, true), &ca).err().unwrap();
        assert!(e.contains("delta"), "{e}");
        let (key3, ca3) = issuer("CA3", false);
        let e = parse(&crl(&key3, &ca3, soon, None, false), &ca3)
            .err()
            .unwrap();
        assert!(e.contains("cRLSign"), "{e}");
        // Garbage.
        assert!(parse(b"\x30\x00", &ca).is_err());
    }
}
