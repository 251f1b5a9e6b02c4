//! Names in certificates: subjectAltName entries, the profile's rules for them,
//! and name constraints as the CLI gives them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use der::asn1::{Ia5String, OctetString};
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::NameConstraints;

use crate::error::{Error, Result};
use crate::profile::{Profile, SanRule};

/// One subjectAltName, as the CLI writes it: `dns:host`, `email:a@b`, `ip:1.2.3.4`,
/// `uri:https://…`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum SanEntry {
    Dns(String),
    Email(String),
    Ip(IpAddr),
    Uri(String),
}

impl fmt::Display for SanEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SanEntry::Dns(v) => write!(f, "dns:{v}"),
            SanEntry::Email(v) => write!(f, "email:{v}"),
            SanEntry::Ip(v) => write!(f, "ip:{v}"),
            SanEntry::Uri(v) => write!(f, "uri:{v}"),
        }
    }
}

impl FromStr for SanEntry {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (kind, value) = s.split_once(':').ok_or_else(|| {
            Error::malformed(format!("SAN `{s}` is not KIND:value (dns, email, ip, uri)"))
        })?;
        let entry = match kind.to_ascii_lowercase().as_str() {
            "dns" => SanEntry::Dns(value.to_ascii_lowercase()),
            "email" => SanEntry::Email(value.to_string()),
            "ip" => SanEntry::Ip(
                value
                    .parse()
                    .map_err(|_| Error::malformed(format!("SAN `{s}`: not an IP address")))?,
            ),
            "uri" => SanEntry::Uri(value.to_string()),
            _ => {
                return Err(Error::malformed(format!(
                    "SAN `{s}`: unknown kind `{kind}` (dns, email, ip, uri)"
                )))
            }
        };
        entry.validate()?;
        Ok(entry)
    }
}

impl SanEntry {
    fn validate(&self) -> Result<()> {
        match self {
            SanEntry::Dns(h) => {
                let ok = !h.is_empty()
                    && h.len() <= 253
                    && h.split('.').count() >= 2
                    && h.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && !l.starts_with('-')
                            && !l.ends_with('-')
                            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                if !ok {
                    return Err(Error::malformed(format!(
                        "`{h}` is not a valid DNS host name"
                    )));
                }
            }
            SanEntry::Email(e) => {
                let ok = e.is_ascii()
                    && e.split_once('@')
                        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
                if !ok {
                    return Err(Error::malformed(format!(
                        "`{e}` is not a valid email address"
                    )));
                }
            }
            SanEntry::Uri(u) => {
                if !u.is_ascii() || !u.contains("://") {
                    return Err(Error::malformed(format!("`{u}` is not an absolute URI")));
                }
            }
            SanEntry::Ip(_) => {}
        }
        Ok(())
    }

    pub fn to_general_name(&self) -> Result<GeneralName> {
        Ok(match self {
            SanEntry::Dns(v) => GeneralName::DnsName(Ia5String::new(v)?),
            SanEntry::Email(v) => GeneralName::Rfc822Name(Ia5String::new(v)?),
            SanEntry::Uri(v) => GeneralName::UniformResourceIdentifier(Ia5String::new(v)?),
            SanEntry::Ip(IpAddr::V4(a)) => {
                GeneralName::IpAddress(OctetString::new(a.octets().to_vec())?)
            }
            SanEntry::Ip(IpAddr::V6(a)) => {
                GeneralName::IpAddress(OctetString::new(a.octets().to_vec())?)
            }
        })
    }

    pub fn from_general_name(gn: &GeneralName) -> Result<SanEntry> {
        let entry = match gn {
            GeneralName::DnsName(v) => SanEntry::Dns(v.to_string().to_ascii_lowercase()),
            GeneralName::Rfc822Name(v) => SanEntry::Email(v.to_string()),
            GeneralName::UniformResourceIdentifier(v) => SanEntry::Uri(v.to_string()),
            GeneralName::IpAddress(o) => {
                let b = o.as_bytes();
                match b.len() {
                    4 => SanEntry::Ip(IpAddr::from(<[u8; 4]>::try_from(b).expect("len 4"))),
                    16 => SanEntry::Ip(IpAddr::from(<[u8; 16]>::try_from(b).expect("len 16"))),
                    _ => return Err(Error::malformed("subjectAltName IP address of bad length")),
                }
            }
            _ => {
                return Err(Error::policy(
                    "only dNSName, rfc822Name, iPAddress and URI subjectAltNames are supported",
                ))
            }
        };
        entry.validate()?;
        Ok(entry)
    }
}

pub(super) fn check_sans(profile: &Profile, sans: &[SanEntry]) -> Result<()> {
    let rules = &profile.spec.san;
    let count = |f: fn(&SanEntry) -> bool| sans.iter().filter(|s| f(s)).count();
    let checks: [(&str, SanRule, usize); 4] = [
        ("dns", rules.dns, count(|s| matches!(s, SanEntry::Dns(_)))),
        (
            "email",
            rules.email,
            count(|s| matches!(s, SanEntry::Email(_))),
        ),
        ("ip", rules.ip, count(|s| matches!(s, SanEntry::Ip(_)))),
        ("uri", rules.uri, count(|s| matches!(s, SanEntry::Uri(_)))),
    ];
    for (kind, rule, n) in checks {
        match rule {
            SanRule::Forbidden if n > 0 => {
                return Err(Error::policy(format!(
                    "profile {} does not allow {kind} subjectAltNames",
                    profile.name()
                )))
            }
            SanRule::Required if n == 0 => {
                return Err(Error::policy(format!(
                    "profile {} requires at least one {kind} subjectAltName",
                    profile.name()
                )))
            }
            _ => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in sans {
        if !seen.insert(s.to_string()) {
            return Err(Error::malformed(format!(
                "subjectAltName {s} is given twice"
            )));
        }
    }
    Ok(())
}

/// Name constraints from the CLI: `--permit-dn`, `--exclude-dn`, `--permit-dns`,
/// `--exclude-dns`.
pub fn name_constraints(
    permit_dn: &[String],
    exclude_dn: &[String],
    permit_dns: &[String],
    exclude_dns: &[String],
) -> Result<Option<NameConstraints>> {
    let subtree = |gn: GeneralName| GeneralSubtree {
        base: gn,
        minimum: 0,
        maximum: None,
    };
    let dn = |s: &String| -> Result<GeneralSubtree> {
        Ok(subtree(GeneralName::DirectoryName(crate::name::parse(s)?)))
    };
    let dns = |s: &String| -> Result<GeneralSubtree> {
        SanEntry::Dns(s.to_ascii_lowercase()).validate()?;
        Ok(subtree(GeneralName::DnsName(Ia5String::new(
            &s.to_ascii_lowercase(),
        )?)))
    };
    let mut permitted = permit_dn.iter().map(dn).collect::<Result<Vec<_>>>()?;
    permitted.extend(permit_dns.iter().map(dns).collect::<Result<Vec<_>>>()?);
    let mut excluded = exclude_dn.iter().map(dn).collect::<Result<Vec<_>>>()?;
    excluded.extend(exclude_dns.iter().map(dns).collect::<Result<Vec<_>>>()?);
    if permitted.is_empty() && excluded.is_empty() {
        return Ok(None);
    }
    Ok(Some(NameConstraints {
        permitted_subtrees: (!permitted.is_empty()).then_some(permitted),
        excluded_subtrees: (!excluded.is_empty()).then_some(excluded),
    }))
}
