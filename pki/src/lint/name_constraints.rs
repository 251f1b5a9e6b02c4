//! Name constraints (RFC 5280 §4.2.1.10) as the lints and the CA read them: does a
//! subject with its subjectAltNames fit one NameConstraints value, and the
//! constraints an issuer's certificate carries. Rules `rfc5280.name-constraints`
//! and `gpki.name-constraints.cn-as-dns` apply them.

use der::Decode;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::NameConstraints;

use crate::cert::SanEntry;
use crate::error::{Error, Result};

/// Checks a subject and its SANs against one NameConstraints value. Returns why it
/// does not fit, if it does not.
pub fn violates_name_constraints(
    subject: &x509_cert::name::Name,
    sans: &[SanEntry],
    nc: &NameConstraints,
) -> Option<String> {
    let subject_text = crate::name::to_string(subject);
    let dn_bases = |trees: &Option<
        Vec<x509_cert::ext::pkix::constraints::name::GeneralSubtree>,
    >|
     -> Vec<x509_cert::name::Name> {
        trees
            .iter()
            .flatten()
            .filter_map(|t| match &t.base {
                GeneralName::DirectoryName(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    };
    let dns_bases = |trees: &Option<
        Vec<x509_cert::ext::pkix::constraints::name::GeneralSubtree>,
    >|
     -> Vec<String> {
        trees
            .iter()
            .flatten()
            .filter_map(|t| match &t.base {
                GeneralName::DnsName(n) => Some(n.to_string().to_ascii_lowercase()),
                _ => None,
            })
            .collect()
    };
    let permitted_dn = dn_bases(&nc.permitted_subtrees);
    let excluded_dn = dn_bases(&nc.excluded_subtrees);
    if !permitted_dn.is_empty()
        && !permitted_dn
            .iter()
            .any(|b| crate::name::within_subtree(subject, b))
    {
        return Some(format!(
            "subject `{subject_text}` is outside the CA's permitted directory names"
        ));
    }
    if let Some(b) = excluded_dn
        .iter()
        .find(|b| crate::name::within_subtree(subject, b))
    {
        return Some(format!(
            "subject `{subject_text}` is inside the excluded subtree `{}`",
            crate::name::to_string(b)
        ));
    }
    let permitted_dns = dns_bases(&nc.permitted_subtrees);
    let excluded_dns = dns_bases(&nc.excluded_subtrees);
    for s in sans {
        if let SanEntry::Dns(host) = s {
            if !permitted_dns.is_empty() && !permitted_dns.iter().any(|b| dns_within(host, b)) {
                return Some(format!(
                    "dNSName `{host}` is outside the CA's permitted DNS names"
                ));
            }
            if let Some(b) = excluded_dns.iter().find(|b| dns_within(host, b)) {
                return Some(format!(
                    "dNSName `{host}` is inside the excluded DNS subtree `{b}`"
                ));
            }
        }
    }
    None
}

/// RFC 5280 §4.2.1.10: a host is within `base` when it equals it or ends with
/// `.base` (label boundary).
fn dns_within(host: &str, base: &str) -> bool {
    let base = base.trim_start_matches('.');
    host == base || host.ends_with(&format!(".{base}"))
}

/// Decodes a NameConstraints extension value (for an issuer chain).
pub fn name_constraints_of(tbs: &TbsCertificate) -> Result<Option<NameConstraints>> {
    for ext in tbs.extensions.iter().flatten() {
        if ext.extn_id == const_oid::db::rfc5280::ID_CE_NAME_CONSTRAINTS {
            return NameConstraints::from_der(ext.extn_value.as_bytes())
                .map(Some)
                .map_err(|e| Error::malformed(format!("nameConstraints: {e}")));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_constraint_respects_label_boundaries() {
        assert!(dns_within("www.mois.go.kr", "go.kr"));
        assert!(dns_within("go.kr", "go.kr"));
        assert!(!dns_within("evilgo.kr", "go.kr"));
        assert!(dns_within("a.go.kr", ".go.kr"));
    }

    /// Each of the four kinds of subtree refuses what it should, and says which.
    #[test]
    fn each_kind_of_subtree_refuses_with_its_reason() {
        let subject = crate::name::parse("CN=x, OU=people, O=Government of Korea, C=KR").unwrap();
        let sans = ["dns:www.mois.go.kr".parse::<SanEntry>().unwrap()];
        let nc =
            |permit_dn: &[&str], exclude_dn: &[&str], permit_dns: &[&str], exclude_dns: &[&str]| {
                let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
                crate::cert::name_constraints(
                    &own(permit_dn),
                    &own(exclude_dn),
                    &own(permit_dns),
                    &own(exclude_dns),
                )
                .unwrap()
                .unwrap()
            };
        let table: [(NameConstraints, Option<&str>); 6] = [
            (
                nc(&["O=Government of Korea, C=KR"], &[], &["go.kr"], &[]),
                None,
            ),
            (
                nc(&["O=Other, C=KR"], &[], &[], &[]),
                Some("outside the CA's permitted directory names"),
            ),
            (
                nc(&[], &["OU=people, O=Government of Korea, C=KR"], &[], &[]),
                Some("inside the excluded subtree `OU=people, O=Government of Korea, C=KR`"),
            ),
            (
                nc(&[], &[], &["mma.go.kr"], &[]),
                Some("dNSName `www.mois.go.kr` is outside the CA's permitted DNS names"),
            ),
            (
                nc(&[], &[], &[], &["mois.go.kr"]),
                Some("dNSName `www.mois.go.kr` is inside the excluded DNS subtree `mois.go.kr`"),
            ),
            (nc(&[], &[], &[], &["is.go.kr"]), None),
        ];
        for (constraints, refusal) in table {
            let got = violates_name_constraints(&subject, &sans, &constraints);
            match refusal {
                None => assert_eq!(got, None),
                Some(why) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(why)),
                    "{got:?} lacks {why}"
                ),
            }
        }
    }
}
