//! The signer's certificate: its chain to a configured trust anchor (the
//! signer's own CA, not a root above it), its purpose and key usage, its URI
//! names, and its status by OCSP.

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509StoreContext, X509};

use super::{fail, malformed, CertStatus, Fail, Reason, Run, R};
use crate::keys::extended_key_usages;

/// A certificate's subject as `key=value, …`, for the report and refusals.
pub(super) fn subject(c: &X509) -> String {
    c.subject_name()
        .entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            Some(format!("{key}={}", e.data().to_string().ok()?))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The chain's leaf, checked to reach an anchor at `now` through `chain[1..]`, to
/// carry `purpose` and digitalSignature; returns it and its issuer.
pub(super) fn validate_chain(
    run: &mut Run,
    chain: &[Vec<u8>],
    purpose: const_oid::ObjectIdentifier,
    purpose_name: &str,
    what: &str,
) -> R<(X509, X509)> {
    let certs = chain
        .iter()
        .map(|d| X509::from_der(d))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Fail(Reason::Malformed, format!("{what}'s chain: {e}")))?;
    if certs.is_empty() {
        return fail(Reason::Malformed, format!("{what} carries no certificate"));
    }
    let leaf = &certs[0];
    let (ok, error, path) = build_path(run, leaf, &certs[1..])
        .map_err(|e| Fail(Reason::UntrustedChain, format!("{what}'s chain: {e}")))?;
    if !ok {
        return fail(
            Reason::UntrustedChain,
            format!(
                "{what}'s certificate `{}` does not chain to a trust anchor: {error}",
                subject(leaf)
            ),
        );
    }
    let Some(issuer) = path.get(1).cloned() else {
        return fail(
            Reason::UntrustedChain,
            format!("{what}'s certificate is itself a trust anchor; configure its CA instead"),
        );
    };
    issuer_is_an_anchor(run, leaf, &issuer, what)?;
    may_sign_for(&chain[0], leaf, purpose, purpose_name, what)?;
    let names: Vec<String> = path.iter().map(subject).collect();
    run.pass(
        "chain",
        format!(
            "{what}: {} (to anchor `{}`, {purpose_name})",
            names.join(" <- "),
            names.last().cloned().unwrap_or_default()
        ),
    );
    Ok((leaf.clone(), issuer))
}

/// OpenSSL's path from `leaf` through `untrusted` to one of the policy's anchors at
/// its `now`: whether it verified, OpenSSL's error if not, and the path built.
fn build_path(
    run: &Run,
    leaf: &X509,
    untrusted: &[X509],
) -> std::result::Result<(bool, String, Vec<X509>), openssl::error::ErrorStack> {
    let mut store = X509StoreBuilder::new()?;
    for a in run.policy.anchors {
        store.add_cert(a.clone())?;
    }
    // An anchor may be a CA below a root: a verifier that trusts the credential
    // CA alone (ISO/IEC 18013-5's IACA role) stops there.
    store.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
    let mut param = openssl::x509::verify::X509VerifyParam::new()?;
    param.set_time(run.policy.now as _);
    store.set_param(&param)?;
    let store = store.build();
    let mut stack = Stack::new()?;
    for c in untrusted {
        stack.push(c.clone())?;
    }
    let mut ctx = X509StoreContext::new()?;
    ctx.init(&store, leaf, &stack, |c| {
        let ok = c.verify_cert()?;
        let path = c
            .chain()
            .map(|s| s.iter().map(|x| x.to_owned()).collect())
            .unwrap_or_default();
        Ok((ok, c.error().error_string().to_string(), path))
    })
}

/// Refuses a leaf whose issuer is not itself a configured anchor.
///
/// ISO/IEC 18013-5's model: the signer's own CA (the IACA role) is the anchor. A
/// root above several CAs would let any of them mint credentials.
fn issuer_is_an_anchor(run: &Run, leaf: &X509, issuer: &X509, what: &str) -> R<()> {
    let issuer_der = issuer.to_der().unwrap_or_default();
    if !run
        .policy
        .anchors
        .iter()
        .any(|a| a.to_der().ok().as_deref() == Some(issuer_der.as_slice()))
    {
        return fail(
            Reason::UntrustedChain,
            format!(
                "{what}'s certificate `{}` is issued by `{}`, which is not a configured trust anchor: anchor the credential CA itself, not a root above it",
                subject(leaf),
                subject(issuer)
            ),
        );
    }
    Ok(())
}

/// Refuses a leaf (DER `leaf_der`) without the extended key usage `purpose`, or
/// whose key usage does not allow digitalSignature.
fn may_sign_for(
    leaf_der: &[u8],
    leaf: &X509,
    purpose: const_oid::ObjectIdentifier,
    purpose_name: &str,
    what: &str,
) -> R<()> {
    let decoded = gpki_pki::cert::decode(leaf_der).map_err(malformed)?;
    let ekus = extended_key_usages(&decoded).map_err(malformed)?;
    if !ekus.contains(&purpose) {
        return fail(
            Reason::WrongPurpose,
            format!(
                "{what}'s certificate `{}` lacks the {purpose_name} extended key usage",
                subject(leaf)
            ),
        );
    }
    let ku = gpki_pki::cert::find_extension::<x509_cert::ext::pkix::KeyUsage>(
        &decoded.tbs_certificate,
        const_oid::db::rfc5280::ID_CE_KEY_USAGE,
    )
    .map_err(malformed)?;
    if !ku.is_some_and(|(_, k)| k.digital_signature()) {
        return fail(
            Reason::WrongPurpose,
            format!("{what}'s certificate does not allow digitalSignature"),
        );
    }
    Ok(())
}

/// The signer's status by OCSP: good passes; revoked or unknown refuses.
pub(super) fn signer_status(run: &mut Run, leaf: &X509, issuer: &X509, what: &str) -> R<()> {
    match run.online.certificate_status(leaf, issuer) {
        Ok(CertStatus::Good) => {
            run.pass(
                "signer-status",
                format!("{what}'s certificate is good (OCSP)"),
            );
            Ok(())
        }
        Ok(CertStatus::Revoked { reason }) => fail(
            Reason::SignerRevoked,
            format!(
                "{what}'s certificate `{}` is revoked ({reason})",
                subject(leaf)
            ),
        ),
        Err(e) => fail(
            Reason::SignerStatusUnknown,
            format!("{what}'s certificate status could not be established: {e}"),
        ),
    }
}

/// The URI subjectAltNames of the certificate `der`: an SD-JWT issuer's `iss`
/// must be one of them.
pub(super) fn uri_sans(der: &[u8]) -> R<Vec<String>> {
    let cert = gpki_pki::cert::decode(der).map_err(malformed)?;
    let san = gpki_pki::cert::find_extension::<x509_cert::ext::pkix::SubjectAltName>(
        &cert.tbs_certificate,
        const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
    )
    .map_err(malformed)?;
    Ok(san
        .map(|(_, s)| {
            s.0.iter()
                .filter_map(|n| match n {
                    x509_cert::ext::pkix::name::GeneralName::UniformResourceIdentifier(u) => {
                        Some(u.to_string())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}
