//! The approval rule as one pure function, [`decide`]: whether a request is
//! refused (a renewal before its window), what it waits for (a second operator,
//! an identity verification), or whether one operator's word sends it to the CA.
//! Routes gather an [`Ask`], call it and act; its table test is every case.

use gpki_pki::profile::Profiles;
use gpki_pki::Result;
use gpki_store::{RaRecord, RaRequest};
use serde::{Deserialize, Serialize};

/// What a request still waits for before one operator's word sends it to the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wait {
    /// Another operator's approval: the profile, or the km profile of the pair
    /// the request makes, is under the RA's dual control.
    SecondOperator,
    /// An identity verification (`POST /v1/requests/ID/identity`): a profile the
    /// request makes asks for one and none is recorded.
    Identity,
}

/// A request as the approval rule sees it.
pub(crate) struct Ask<'a> {
    pub(crate) kind: &'a str,
    pub(crate) profile: &'a str,
    /// It makes an official-km certificate too, whose key the CA makes and
    /// delivers.
    pub(crate) km: bool,
    /// It binds a name to a key not bound before: a new request, an enrolment, a
    /// renewal with a new CSR, or a renewal that makes a new km key.
    pub(crate) new_key: bool,
    pub(crate) identity_seen: bool,
    /// For a renewal being submitted: the notAfter of the certificate renewed,
    /// which opens the RA's renewal window. A stored request was judged by it
    /// when submitted (and the CA judges it again).
    pub(crate) renews: Option<i64>,
}

/// What the approval rule decides for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Refused: a renewal asked before its window opens at `opens` (Unix seconds).
    TooEarly { opens: i64 },
    /// It waits for these before one operator's word sends it to the CA.
    Waits(Vec<Wait>),
    /// One operator decides it alone: the submission is its approval.
    Alone,
}

impl Decision {
    /// What it waits for: nothing when one operator decides it alone; a
    /// renewal before its window is refused, never read as waiting for nothing.
    pub(crate) fn waits(&self) -> Result<&[Wait]> {
        match self {
            Decision::Waits(w) => Ok(w),
            Decision::Alone => Ok(&[]),
            Decision::TooEarly { opens } => Err(gpki_pki::Error::policy(format!(
                "a renewal before its window, which opens at {}",
                gpki_pki::time::rfc3339(*opens)
            ))),
        }
    }
}

/// The approval rule for `a` in `ra` at `now`: refused when a renewal comes
/// before its window, else what it waits for ([`waits_for`]), else alone.
pub(crate) fn decide(ra: &RaRecord, profiles: &Profiles, a: &Ask, now: i64) -> Result<Decision> {
    if let Some(not_after) = a.renews {
        let opens = not_after - ra.renew_window_days * 86_400;
        if now < opens {
            return Ok(Decision::TooEarly { opens });
        }
    }
    let waits = waits_for(ra, profiles, a)?;
    Ok(if waits.is_empty() {
        Decision::Alone
    } else {
        Decision::Waits(waits)
    })
}

impl<'a> Ask<'a> {
    pub(crate) fn of(r: &'a RaRequest) -> Ask<'a> {
        let km = r.km_transport.is_some();
        Ask {
            kind: &r.kind,
            profile: r.profile.as_deref().unwrap_or(""),
            km,
            new_key: match r.kind.as_str() {
                "issue" | "enrol" => true,
                "renew" => r.csr.is_some() || km,
                _ => false,
            },
            identity_seen: r.identity.is_some(),
            renews: None,
        }
    }
}

/// The approval rule, one function for every route that binds a name to a key
/// (submission, enrolment, renewal with a new key or a new km key, approval): a
/// new binding needs a second operator when any profile it makes is under dual
/// control, and an identity verification when any profile it makes asks for one.
/// Revocations and same-key renewals wait for nothing.
fn waits_for(ra: &RaRecord, profiles: &Profiles, a: &Ask) -> Result<Vec<Wait>> {
    if !a.new_key {
        return Ok(Vec::new());
    }
    let mut made = vec![a.profile];
    if a.km {
        made.push(gpki_service::ca_api::KM_PROFILE);
    }
    let dual = if a.kind == "enrol" || a.profile == "ra-operator" {
        // An operator certificate is the RA's membership, whatever the route.
        enrolment_dual_control(ra)
    } else {
        made.iter().any(|p| ra.dual_control.iter().any(|d| d == p))
    };
    let mut identity = false;
    for p in &made {
        identity |= profiles.get(p)?.spec.requires_identity_verification;
    }
    let mut waits = Vec::new();
    if dual {
        waits.push(Wait::SecondOperator);
    }
    if identity && !a.identity_seen {
        waits.push(Wait::Identity);
    }
    Ok(waits)
}

/// Whether enrolments in `ra` need a second administrator: when any of its
/// profiles is under dual control (else one administrator could enrol a second
/// identity and approve their own requests with it), or ra-operator is.
pub(crate) fn enrolment_dual_control(ra: &RaRecord) -> bool {
    !ra.dual_control.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ra(dual: &[&str]) -> RaRecord {
        RaRecord {
            id: 1,
            name: "A".into(),
            ca_name: "mois".into(),
            subtrees: vec![],
            profiles: vec![],
            dual_control: dual.iter().map(|s| s.to_string()).collect(),
            renew_window_days: 30,
            domains: vec![],
            host: "h".into(),
            status: "active".into(),
            created_at: 0,
        }
    }

    /// The approval rule, every combination that matters: which routes bind a
    /// new key, which profiles a request makes, dual control on either, the
    /// identity seen or not; and an operator certificate under the enrolment rule.
    #[test]
    fn the_approval_rule_holds_for_every_route_that_binds_a_key() {
        use Wait::{Identity, SecondOperator};
        let profiles = Profiles::builtin().unwrap();
        // (kind, profile, km, new key, identity seen, RA dual control, waits)
        type Row<'a> = (
            &'a str,
            &'a str,
            bool,
            bool,
            bool,
            &'a [&'a str],
            &'a [Wait],
        );
        let table: &[Row] = &[
            // A submission of a profile asking for identity.
            (
                "issue",
                "official-sign",
                false,
                true,
                false,
                &[],
                &[Identity],
            ),
            ("issue", "official-sign", false, true, true, &[], &[]),
            (
                "issue",
                "official-sign",
                false,
                true,
                true,
                &["official-sign"],
                &[SecondOperator],
            ),
            // A dual enrolment: official-km under dual control holds.
            (
                "issue",
                "official-sign",
                true,
                true,
                true,
                &["official-km"],
                &[SecondOperator],
            ),
            (
                "issue",
                "official-sign",
                true,
                true,
                false,
                &[],
                &[Identity],
            ),
            // A profile without identity, under dual control or not.
            ("issue", "institution-sign", false, true, false, &[], &[]),
            (
                "issue",
                "institution-sign",
                false,
                true,
                false,
                &["institution-sign"],
                &[SecondOperator],
            ),
            // Renewals: the same key waits for nothing; a new CSR or a new km key
            // is a new binding.
            (
                "renew",
                "official-sign",
                false,
                false,
                false,
                &["official-sign"],
                &[],
            ),
            (
                "renew",
                "official-sign",
                false,
                true,
                false,
                &[],
                &[Identity],
            ),
            (
                "renew",
                "official-sign",
                true,
                true,
                false,
                &[],
                &[Identity],
            ),
            ("renew", "official-sign", true, true, true, &[], &[]),
            (
                "renew",
                "official-sign",
                true,
                true,
                true,
                &["official-km"],
                &[SecondOperator],
            ),
            // Operator certificates: any dual control of the RA holds them.
            (
                "enrol",
                "ra-operator",
                false,
                true,
                false,
                &["official-sign"],
                &[SecondOperator],
            ),
            ("enrol", "ra-operator", false, true, false, &[], &[]),
            (
                "renew",
                "ra-operator",
                false,
                true,
                false,
                &["official-sign"],
                &[SecondOperator],
            ),
            // Revocations wait for nothing.
            (
                "revoke",
                "official-sign",
                false,
                false,
                false,
                &["official-sign"],
                &[],
            ),
        ];
        for (kind, profile, km, new_key, identity_seen, dual, want) in table {
            let ask = Ask {
                kind,
                profile,
                km: *km,
                new_key: *new_key,
                identity_seen: *identity_seen,
                renews: None,
            };
            let got = decide(&ra(dual), &profiles, &ask, 0).unwrap();
            let want = if want.is_empty() {
                Decision::Alone
            } else {
                Decision::Waits(want.to_vec())
            };
            assert_eq!(
                got, want,
                "{kind} {profile} km={km} new_key={new_key} identity={identity_seen} dual={dual:?}"
            );
        }
    }

    /// The renewal window (30 days in `ra`): refused before it opens, whatever
    /// else the request is; from the second it opens, judged as any request.
    #[test]
    fn a_renewal_is_refused_before_its_window_and_judged_within_it() {
        use Wait::{Identity, SecondOperator};
        let profiles = Profiles::builtin().unwrap();
        let day = 86_400;
        let not_after = 1_000 * day;
        let opens = not_after - 30 * day;
        // (new key, identity seen, RA dual control, now, decision)
        let table: &[(bool, bool, &[&str], i64, Decision)] = &[
            (false, false, &[], opens - 1, Decision::TooEarly { opens }),
            (
                true,
                true,
                &["official-sign"],
                opens - day,
                Decision::TooEarly { opens },
            ),
            (false, false, &[], opens, Decision::Alone),
            (
                false,
                false,
                &["official-sign"],
                not_after - 1,
                Decision::Alone,
            ),
            (true, false, &[], opens, Decision::Waits(vec![Identity])),
            (
                true,
                true,
                &["official-sign"],
                opens + day,
                Decision::Waits(vec![SecondOperator]),
            ),
            // Expired already: still inside the window (the CA refuses it).
            (false, false, &[], not_after + day, Decision::Alone),
        ];
        for (new_key, identity_seen, dual, now, want) in table {
            let ask = Ask {
                kind: "renew",
                profile: "official-sign",
                km: false,
                new_key: *new_key,
                identity_seen: *identity_seen,
                renews: Some(not_after),
            };
            assert_eq!(
                decide(&ra(dual), &profiles, &ask, *now).unwrap(),
                *want,
                "new_key={new_key} identity={identity_seen} dual={dual:?} now={now}"
            );
        }
        // Not a renewal being submitted: no window.
        let stored = Ask {
            renews: None,
            kind: "renew",
            profile: "official-sign",
            km: false,
            new_key: false,
            identity_seen: false,
        };
        assert_eq!(
            decide(&ra(&[]), &profiles, &stored, 0).unwrap(),
            Decision::Alone
        );
    }

    /// A stored request is asked as what it binds: a renewal with a CSR or a
    /// transport key is a new key, one with neither is not.
    #[test]
    fn a_stored_request_is_asked_as_what_it_binds() {
        let r = |kind: &str, csr: bool, km: bool| RaRequest {
            id: 1,
            ra_id: 1,
            idempotency_key: "k".into(),
            body_sha256: String::new(),
            kind: kind.into(),
            profile: Some("official-sign".into()),
            subject: None,
            csr: csr.then(|| b"csr".to_vec()),
            sans: vec![],
            target_cert_id: None,
            reason: None,
            status: "submitted".into(),
            submitted_by: Some(1),
            approved_by: None,
            decided_by: None,
            note: None,
            cert_id: None,
            created_at: 0,
            updated_at: 0,
            identity: None,
            enrol: None,
            km_transport: km.then(|| "t".into()),
        };
        for (kind, csr, km, new_key) in [
            ("issue", true, false, true),
            ("enrol", true, false, true),
            ("renew", false, false, false),
            ("renew", true, false, true),
            ("renew", false, true, true),
            ("revoke", false, false, false),
        ] {
            let req = r(kind, csr, km);
            let a = Ask::of(&req);
            assert_eq!((a.new_key, a.km), (new_key, km), "{kind} csr={csr} km={km}");
        }
    }
}
