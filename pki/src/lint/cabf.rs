//! The CA/Browser Forum's Baseline Requirements for TLS server certificates
//! (`cabf.*`): they judge the certificates of profiles with the `cabf-serverauth`
//! lint set (g-ssl, server), and `cabf.subject.cn-in-san` those of profiles that
//! ask for it. The maximum validity changes on set dates ([`TLS_VALIDITY`]).
//!
//! Effective dates: the BR's 7.1.2 certificate profiles (sections 7.1.2.7.x) are
//! those of ballot SC-062, in force from 2023-09-15 ([`SC_062`]); earlier ballots
//! asked much the same, but a rule citing 7.1.2.7.x judges from that date.

use time::macros::date;

use super::{midnight_utc, Cert, Facts, Findings, Scope};
use crate::cert::SanEntry;
use crate::profile;

/// Ballot SC-062, the BR's certificate profiles (7.1.2), took effect on
/// 2023-09-15.
const SC_062: Option<i64> = Some(midnight_utc(date!(2023 - 09 - 15)));

/// Certificates of profiles with the `cabf-serverauth` lint set, whose
/// extensions decode.
const TLS_SERVER: Scope = Scope {
    applies_to: "certificates of profiles with the cabf-serverauth lint set (TLS servers)",
    applies: |c| c.undecodable.is_none() && c.profile.has_lint_set("cabf-serverauth"),
};

/// Certificates of profiles whose `san.cn_in_san` asks that every commonName be
/// a subjectAltName, whose extensions decode.
const CN_IN_SAN: Scope = Scope {
    applies_to: "certificates of profiles with san.cn_in_san",
    applies: |c| c.undecodable.is_none() && c.profile.spec.san.cn_in_san,
};

/// CA/B BR 7.1.4.3: every commonName is one of the subjectAltNames (when the
/// profile asks for it).
pub(super) const SUBJECT_CN_IN_SAN: Facts = Facts {
    name: "cabf.subject.cn-in-san",
    source: "CA/B BR 7.1.4.3",
    scope: CN_IN_SAN,
    // Required since the first Baseline Requirements (1.0, §9.2.2), in force from
    // 2012-07-01.
    effective: Some(midnight_utc(date!(2012 - 07 - 01))),
    check: subject_cn_in_san,
};

fn subject_cn_in_san(c: &Cert<'_>, out: &mut Findings<'_>) {
    for cn in crate::name::values(&c.tbs.subject, "CN") {
        let cn_l = cn.to_ascii_lowercase();
        let found = c.sans.iter().any(|s| match s {
            SanEntry::Dns(d) => *d == cn_l,
            SanEntry::Ip(ip) => ip.to_string() == cn,
            _ => false,
        });
        if !found {
            out.add(format!(
                "commonName `{cn}` is not one of the subjectAltNames"
            ));
        }
    }
}

/// CA/B BR 6.3.2: a TLS subscriber certificate is valid for at most the days
/// [`TLS_VALIDITY`] allows on its notBefore (398, then 200, 100 and 47).
pub(super) const VALIDITY_SCHEDULE: Facts = Facts {
    name: "cabf.validity.schedule",
    source: "CA/B BR 6.3.2 (ballot SC-081)",
    scope: TLS_SERVER,
    // Always: the dates are the steps of TLS_VALIDITY, whose first step (398 days,
    // ballot SC-31) judges every certificate from before 2026-03-15.
    effective: None,
    check: validity_schedule,
};

fn validity_schedule(c: &Cert<'_>, out: &mut Findings<'_>) {
    let most = TLS_VALIDITY.max_days(c.not_before);
    if c.days > f64::from(most) {
        out.add(format!(
            "validity of {:.1} days exceeds the {most} days allowed from {}",
            c.days,
            crate::time::rfc3339(c.not_before)
        ));
    }
}

/// CA/B BR 7.1.2.7.12: subjectAltName is present.
pub(super) const SAN_PRESENT: Facts = Facts {
    name: "cabf.san.present",
    source: "CA/B BR 7.1.2.7.12",
    scope: TLS_SERVER,
    effective: SC_062,
    check: san_present,
};

fn san_present(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.sans.is_empty() {
        out.add("subjectAltName is required");
    }
}

/// CA/B BR 7.1.2.7.12: no dNSName is an Internal Name.
pub(super) const SAN_INTERNAL_NAME: Facts = Facts {
    name: "cabf.san.internal-name",
    source: "CA/B BR 7.1.2.7.12",
    scope: TLS_SERVER,
    effective: SC_062,
    check: san_internal_name,
};

fn san_internal_name(c: &Cert<'_>, out: &mut Findings<'_>) {
    for s in &c.sans {
        if let SanEntry::Dns(d) = s {
            if d.ends_with(".local")
                || d.ends_with(".internal")
                || d == "localhost"
                || !d.contains('.')
            {
                out.add(format!("`{d}` is an internal name"));
            }
        }
    }
}

/// CA/B BR 7.1.2.7.12: no iPAddress is a Reserved IP Address.
pub(super) const SAN_RESERVED_IP: Facts = Facts {
    name: "cabf.san.reserved-ip",
    source: "CA/B BR 7.1.2.7.12",
    scope: TLS_SERVER,
    effective: SC_062,
    check: san_reserved_ip,
};

fn san_reserved_ip(c: &Cert<'_>, out: &mut Findings<'_>) {
    for s in &c.sans {
        if let SanEntry::Ip(ip) = s {
            let reserved = match ip {
                std::net::IpAddr::V4(v4) => {
                    v4.is_private() || v4.is_loopback() || v4.is_link_local()
                }
                std::net::IpAddr::V6(v6) => v6.is_loopback(),
            };
            if reserved {
                out.add(format!("{ip} is a reserved address"));
            }
        }
    }
}

/// CA/B BR 7.1.2.7.12: subjectAltName holds only dNSName and iPAddress.
pub(super) const SAN_TYPE: Facts = Facts {
    name: "cabf.san.type",
    source: "CA/B BR 7.1.2.7.12",
    scope: TLS_SERVER,
    effective: SC_062,
    check: san_type,
};

fn san_type(c: &Cert<'_>, out: &mut Findings<'_>) {
    for s in &c.sans {
        if !matches!(s, SanEntry::Dns(_) | SanEntry::Ip(_)) {
            out.add(format!("{s} is not allowed in a TLS server certificate"));
        }
    }
}

/// CA/B BR 7.1.2.7.10: extendedKeyUsage has serverAuth and not anyExtendedKeyUsage.
pub(super) const EKU_SERVER_AUTH: Facts = Facts {
    name: "cabf.eku.server-auth",
    source: "CA/B BR 7.1.2.7.10",
    scope: TLS_SERVER,
    effective: SC_062,
    check: eku_server_auth,
};

fn eku_server_auth(c: &Cert<'_>, out: &mut Findings<'_>) {
    let ok = c.ext.eku.as_ref().is_some_and(|(_, e)| {
        e.0.contains(&profile::EKU_SERVER_AUTH) && !e.0.contains(&profile::EKU_ANY)
    });
    if !ok {
        out.add("extendedKeyUsage must contain serverAuth and not anyExtendedKeyUsage");
    }
}

/// CA/B BR 7.1.2.7.4: no organizationalUnitName in the subject.
pub(super) const SUBJECT_NO_OU: Facts = Facts {
    name: "cabf.subject.no-ou",
    source: "CA/B BR 7.1.2.7.4",
    scope: TLS_SERVER,
    effective: SC_062,
    check: subject_no_ou,
};

fn subject_no_ou(c: &Cert<'_>, out: &mut Findings<'_>) {
    if !crate::name::values(&c.tbs.subject, "OU").is_empty() {
        out.add("organizationalUnitName is prohibited (BR 7.1.2.7.4)");
    }
}

/// CA/B BR 6.1.5: the key is RSA ≥ 2048 or ECDSA P-256/P-384 (the key types gpki
/// decodes).
pub(super) const KEY_TYPE: Facts = Facts {
    name: "cabf.key.type",
    source: "CA/B BR 6.1.5",
    scope: TLS_SERVER,
    // Unsure of one date for the whole rule: RSA of at least 2048 bits dates from
    // BR 1.0 (Appendix A, certificates valid from 2014 on), the list of curves from
    // later versions; so it judges every certificate.
    effective: None,
    check: key_type,
};

fn key_type(c: &Cert<'_>, out: &mut Findings<'_>) {
    if c.key_type.is_err() {
        out.add("key must be RSA ≥ 2048 or ECDSA P-256/P-384");
    }
}

/// A maximum validity that changes on set dates.
#[derive(Debug, Clone, Copy)]
pub struct ValiditySchedule {
    /// `(from, days)`, oldest first: from Unix second `from` on, at most `days`.
    /// The first step's `from` is `i64::MIN`.
    pub steps: &'static [(i64, u32)],
}

impl ValiditySchedule {
    /// The longest validity, in days, of a certificate whose notBefore is
    /// `not_before` (Unix seconds).
    pub fn max_days(&self, not_before: i64) -> u32 {
        self.steps
            .iter()
            .take_while(|(from, _)| *from <= not_before)
            .last()
            .map_or(0, |(_, days)| *days)
    }
}

/// CA/B BR 6.3.2 as amended by ballot SC-081: the longest validity of a TLS
/// subscriber certificate, by its notBefore. The planner caps g-ssl validity with
/// it and rule `cabf.validity.schedule` checks it.
pub const TLS_VALIDITY: ValiditySchedule = ValiditySchedule {
    steps: &[
        (i64::MIN, 398),
        (1_773_532_800, 200), // 2026-03-15T00:00:00Z
        (1_805_068_800, 100), // 2027-03-15T00:00:00Z
        (1_868_227_200, 47),  // 2029-03-15T00:00:00Z
    ],
};

#[cfg(test)]
pub(super) mod tests {
    use const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME;
    use x509_cert::ext::pkix::ExtendedKeyUsage;

    use super::*;
    use crate::lint::sample::{self, planned, Case};
    use crate::lint::{lint, Rule};
    use crate::profile::EKU_CLIENT_AUTH;

    /// For every rule of the family, a certificate that passes it and one that
    /// fails it, in the order the rules run.
    pub(in crate::lint) fn cases() -> Vec<Case> {
        vec![
            Case {
                rule: Rule::SubjectCnInSan,
                pass: || {
                    sample::server().with_subject("CN=www.example.go.kr, O=Test, L=Seoul, C=KR")
                },
                fail: || {
                    sample::server().with_subject("CN=portal.example.go.kr, O=Test, L=Seoul, C=KR")
                },
                found: &[Rule::SubjectCnInSan],
                says: "commonName `portal.example.go.kr` is not one of the subjectAltNames",
            },
            Case {
                rule: Rule::CabfValiditySchedule,
                pass: sample::server,
                // 250 days from now, under a profile that would allow them.
                fail: || {
                    sample::server().with(|s| {
                        s.profile.spec.validity_days = 397;
                        let not_before = crate::time::unix_seconds(&s.tbs.validity.not_before);
                        s.tbs.validity.not_after =
                            crate::time::x509_time(not_before + 250 * 86_400).unwrap();
                    })
                },
                found: &[Rule::CabfValiditySchedule],
                says: "validity of 250.0 days exceeds the",
            },
            Case {
                rule: Rule::CabfSanPresent,
                pass: sample::server,
                fail: || sample::server().without_extension(ID_CE_SUBJECT_ALT_NAME),
                found: &[Rule::CabfSanPresent],
                says: "subjectAltName is required",
            },
            Case {
                rule: Rule::CabfSanInternalName,
                pass: sample::server,
                fail: || {
                    sample::server().with_sans(&["dns:www.example.go.kr", "dns:intranet.local"])
                },
                found: &[Rule::CabfSanInternalName],
                says: "`intranet.local` is an internal name",
            },
            Case {
                rule: Rule::CabfSanReservedIp,
                pass: || sample::server().with_sans(&["dns:www.example.go.kr", "ip:211.43.1.10"]),
                fail: || sample::server().with_sans(&["dns:www.example.go.kr", "ip:10.0.0.1"]),
                found: &[Rule::CabfSanReservedIp],
                says: "10.0.0.1 is a reserved address",
            },
            Case {
                rule: Rule::CabfSanType,
                pass: sample::server,
                fail: || {
                    sample::server()
                        .with_sans(&["dns:www.example.go.kr", "email:webmaster@example.go.kr"])
                },
                found: &[Rule::CabfSanType],
                says: "email:webmaster@example.go.kr is not allowed in a TLS server certificate",
            },
            Case {
                rule: Rule::CabfEkuServerAuth,
                pass: sample::server,
                fail: || {
                    sample::server().with_extension(&ExtendedKeyUsage(vec![EKU_CLIENT_AUTH]), false)
                },
                found: &[Rule::CabfEkuServerAuth],
                says: "extendedKeyUsage must contain serverAuth and not anyExtendedKeyUsage",
            },
            Case {
                rule: Rule::CabfSubjectNoOu,
                pass: sample::server,
                fail: || sample::server().with_subject("OU=Web, O=Test, L=Seoul, C=KR"),
                found: &[Rule::CabfSubjectNoOu],
                says: "organizationalUnitName is prohibited (BR 7.1.2.7.4)",
            },
            Case {
                rule: Rule::CabfKeyType,
                pass: sample::server,
                // gpki decodes exactly the key types the BR allow it (RSA 2048, 3072,
                // 4096, P-256, P-384), so a key this rule refuses is one
                // `gpki.key-type.supported` refuses too: the two always fail together.
                fail: || {
                    sample::server().with(|s| s.tbs.subject_public_key_info = sample::p521_spki())
                },
                found: &[Rule::KeyTypeSupported, Rule::CabfKeyType],
                says: "key must be RSA ≥ 2048 or ECDSA P-256/P-384",
            },
        ]
    }

    #[test]
    fn each_rule_passes_and_fails() {
        sample::check_cases(&cases());
    }

    /// The same faults in a certificate whose profile has no `cabf-serverauth`
    /// lint set are not the BR's to judge.
    #[test]
    fn only_tls_server_profiles_are_judged_by_the_brs() {
        let no_ou = || sample::server().with_subject("OU=Web, O=Test, L=Seoul, C=KR");
        assert_eq!(no_ou().rules(), [Rule::CabfSubjectNoOu]);
        let elsewhere = no_ou().with(|s| s.profile.spec.lints.clear());
        assert_eq!(elsewhere.rules(), []);
    }

    #[test]
    fn the_tls_validity_schedule_steps_on_its_dates() {
        let day = 86_400;
        let mar_15_2026 = 1_773_532_800;
        assert_eq!(TLS_VALIDITY.max_days(i64::MIN), 398);
        assert_eq!(TLS_VALIDITY.max_days(mar_15_2026 - 1), 398);
        assert_eq!(TLS_VALIDITY.max_days(mar_15_2026), 200);
        assert_eq!(TLS_VALIDITY.max_days(mar_15_2026 + 365 * day - 1), 200);
        assert_eq!(TLS_VALIDITY.max_days(1_805_068_800), 100);
        assert_eq!(TLS_VALIDITY.max_days(1_868_227_200), 47);
        assert_eq!(TLS_VALIDITY.max_days(i64::MAX), 47);
    }

    #[test]
    fn tls_validity_is_judged_by_the_schedule_not_by_398_days() {
        let (mut tbs, mut profile, issuer) = planned(
            "server",
            "O=Test, L=Seoul, C=KR",
            &["dns:www.example.go.kr"],
        );
        // Planned today (after 2026-03-15): inside the 200 days the schedule allows.
        assert_eq!(lint(&tbs, &profile, &issuer), []);
        // A profile written for the old maximum does not widen it.
        profile.spec.validity_days = 397;
        let not_before = crate::time::now();
        assert!(TLS_VALIDITY.max_days(not_before) <= 200);
        // 250 days passed the old 398-day rule; the schedule refuses it.
        tbs.validity.not_before = crate::time::x509_time(not_before).unwrap();
        tbs.validity.not_after = crate::time::x509_time(not_before + 250 * 86_400).unwrap();
        let findings = lint(&tbs, &profile, &issuer);
        assert_eq!(
            findings.iter().map(|f| f.rule).collect::<Vec<_>>(),
            [Rule::CabfValiditySchedule],
            "{findings:?}"
        );
    }
}
