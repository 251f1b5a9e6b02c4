//! An RA's scope: the profiles, subject subtrees and domains it may ask the CA
//! for. The RA service checks it to refuse early and the CA service again before
//! it signs; `gpki ra` checks it for an operator's certificate.

use gpki_pki::{Error, ErrorKind, Result};

use crate::{CertificateRecord, RaRecord, Store};

impl Store {
    /// The certificate `serial` (as an operator types it) of RA `ra`'s CA,
    /// whether or not it is in the RA's scope: the caller checks scope itself
    /// (else [`Store::scoped_certificate`]).
    pub async fn unscoped_ra_certificate(
        &self,
        ra: &RaRecord,
        serial: &str,
    ) -> Result<CertificateRecord> {
        let serial = serial.parse::<gpki_pki::serial::SerialNumber>()?.to_hex();
        let issuer = self.authority_by_name(&ra.ca_name).await?;
        self.certificate(issuer.id, &serial).await?.ok_or_else(|| {
            Error::not_found(format!(
                "no certificate with serial {serial} from CA `{}`",
                ra.ca_name
            ))
        })
    }

    /// [`Store::unscoped_ra_certificate`], refused unless it is within the RA's scope: what
    /// the RA service checks before an operator acts on a certificate, and the CA
    /// service again before it renews or revokes one.
    pub async fn scoped_certificate(
        &self,
        ra: &RaRecord,
        serial: &str,
    ) -> Result<CertificateRecord> {
        let c = self.unscoped_ra_certificate(ra, serial).await?;
        ra.check_scope(&c.profile, &c.subject)?;
        Ok(c)
    }
}

impl RaRecord {
    /// Refused unless `profile` and `subject` are within the RA's scope.
    pub fn check_scope(&self, profile: &str, subject: &str) -> Result<()> {
        let ra = self;
        if !ra.profiles.iter().any(|p| p == profile) {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "profile {profile} is outside the scope of RA `{}` (allowed: {})",
                    ra.name,
                    ra.profiles.join(", ")
                ),
            ));
        }
        let name = gpki_pki::name::parse(subject)?;
        for t in &ra.subtrees {
            if gpki_pki::name::within_subtree(&name, &gpki_pki::name::parse(t)?) {
                return Ok(());
            }
        }
        Err(Error::new(
            ErrorKind::Unauthorized,
            format!(
                "subject `{subject}` is outside the institutions of RA `{}` ({})",
                ra.name,
                ra.subtrees.join("; ")
            ),
        ))
    }

    /// Refused unless every SAN is a DNS name or an e-mail address under one of the
    /// RA's domains: the DN subtree scopes the subject, this scopes what else the
    /// certificate names.
    pub fn check_sans(&self, sans: &[String]) -> Result<()> {
        let ra = self;
        use gpki_pki::cert::SanEntry;
        let under = |host: &str| {
            let host = host.to_ascii_lowercase();
            ra.domains.iter().any(|d| {
                let d = d.to_ascii_lowercase();
                host == d || host.ends_with(&format!(".{d}"))
            })
        };
        for s in sans {
            let entry: SanEntry = s.parse()?;
            let host = match &entry {
                SanEntry::Dns(d) => d.clone(),
                SanEntry::Email(e) => e
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_default(),
                SanEntry::Ip(_) | SanEntry::Uri(_) => {
                    return Err(Error::new(
                        ErrorKind::Unauthorized,
                        format!("SAN `{s}`: an RA asks for DNS names and e-mail addresses only"),
                    ))
                }
            };
            if !under(&host) {
                return Err(Error::new(
                    ErrorKind::Unauthorized,
                    format!(
                        "SAN `{s}` is outside the domains of RA `{}` ({})",
                        ra.name,
                        if ra.domains.is_empty() {
                            "none".to_string()
                        } else {
                            ra.domains.join(", ")
                        }
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ra() -> RaRecord {
        RaRecord {
            id: 1,
            name: "mois-ra".into(),
            ca_name: "mois".into(),
            subtrees: vec!["OU=MOIS, O=Government of Korea, C=KR".into()],
            profiles: vec!["official-sign".into(), "g-ssl".into()],
            dual_control: vec![],
            renew_window_days: 30,
            domains: vec!["mois.go.kr".into()],
            host: "ra-host".into(),
            status: "active".into(),
            created_at: 0,
        }
    }

    #[test]
    fn an_ra_asks_only_for_its_profiles_subjects_and_domains() {
        let ra = ra();
        let inside = "CN=Hong(001), OU=people, OU=MOIS, O=Government of Korea, C=KR";
        let outside = "CN=Kim(002), OU=people, OU=MOE, O=Government of Korea, C=KR";
        // (profile, subject, allowed)
        for (profile, subject, ok) in [
            ("official-sign", inside, true),
            ("g-ssl", inside, true),
            ("official-km", inside, false),
            ("official-sign", outside, false),
        ] {
            let r = ra.check_scope(profile, subject);
            assert_eq!(r.is_ok(), ok, "{profile} {subject}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.kind, ErrorKind::Unauthorized);
            }
        }
        // (SANs, allowed)
        for (sans, ok) in [
            (&["dns:mois.go.kr", "dns:www.mois.go.kr"][..], true),
            (&["email:hong@mois.go.kr"][..], true),
            (&["dns:WWW.MOIS.GO.KR"][..], true),
            (&["dns:evilmois.go.kr"][..], false),
            (&["dns:www.moe.go.kr"][..], false),
            (&["dns:www.mois.go.kr", "ip:10.0.0.1"][..], false),
            (&["uri:https://www.mois.go.kr/"][..], false),
            (&[][..], true),
        ] {
            let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
            let r = ra.check_sans(&sans);
            assert_eq!(r.is_ok(), ok, "{sans:?}: {r:?}");
        }
    }
}
