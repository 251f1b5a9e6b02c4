//! The issuing workflow through the RA service under dual control, and the
//! refusals of requests and callers at the RA, step by step; the driver runs every
//! step of this module and its siblings on one deployment.

use serde_json::Value;

use super::*;

/// Hong's official-sign request of institution A, issued under dual control: the
/// request the later steps replay, conflict with, renew and revoke.
pub(super) struct Hong {
    pub subject: String,
    pub csr: String,
    pub id: String,
    pub serial: String,
}

impl Hong {
    /// The submission that made it (replayed as is).
    fn submit(&self) -> [&str; 12] {
        [
            "ra",
            "submit",
            "--idempotency-key",
            "hong-1",
            "--profile",
            "official-sign",
            "--subject",
            &self.subject,
            "--csr",
            &self.csr,
            "--san",
            "email:gildong.hong@mois.go.kr",
        ]
    }
}

fn workflow_and_refusals(backend: Backend) {
    if !require("curl") || !require("openssl") {
        return;
    }
    let Some(d) = Deployment::start(backend) else {
        return;
    };
    let hong = step_submit_and_approve_under_dual_control(&d);
    step_an_officials_certificate_is_no_operators(&d, &hong);
    let (other, csr2) = step_replay_conflict_and_broken_csr(&d, &hong);
    step_requests_outside_the_ras_scope(&d, &hong);
    step_callers_without_a_certificate_of_the_pki(&d);
    super::to_the_ca::step_the_ca_refuses_callers_and_scope(&d, &hong);
    super::to_the_ca::step_the_ca_replays_and_checks_possession(&d, &hong);
    super::to_the_ca::step_sans_ids_and_renewal_window_at_the_ca(&d, &hong, &other, &csr2);
    super::operators::step_early_renewal_refused(&d, &hong);
    super::operators::step_administrator_enrolment_under_dual_control(&d);
    super::operators::step_revoked_operator_refused_within_a_second(&d);
    super::operators::step_revocation_through_the_ra(&d, &hong);
    super::operators::step_suspended_operator_is_not_found_elsewhere(&d);
    let (body, serial) = super::changes::step_replay_after_the_ca_is_held(&d);
    super::changes::step_ra_scope_changes_hold_within_a_second(&d);
    super::changes::step_audit_anchored_and_health_behind_mtls(&d);
    super::changes::step_damaged_replay_is_an_internal_error(&d, &body, &serial);
}

/// Submitted by a1 and approved by a2 once the identity is verified: the
/// submitter cannot approve, nor anyone before the verification.
fn step_submit_and_approve_under_dual_control(d: &Deployment) -> Hong {
    // Submitted by a1: official-sign is under dual control and needs an identity
    // verification, so it waits.
    let (subject, csr) = official(d, "hong", A);
    let hong = Hong {
        subject,
        csr,
        id: String::new(),
        serial: String::new(),
    };
    let submit = hong.submit();
    let v = d.ra_ok("a1", &submit);
    assert_eq!(v["request"]["status"], "submitted", "{v}");
    let id = v["request"]["id"].to_string();

    // The submitter cannot approve under dual control; refused, audited, nothing made.
    let (certs, refusals) = (d.certificates(), d.refusals());
    let detail = d.ra_refused("a1", &["ra", "approve", &id], "unauthorized");
    assert!(detail.contains("dual control"), "{detail}");
    assert_eq!(d.certificates(), certs);
    assert_eq!(d.refusals(), refusals + 1);

    // A second operator cannot approve before the identity is verified.
    let detail = d.ra_refused("a2", &["ra", "approve", &id], "policy_violation");
    assert!(detail.contains("identity verification"), "{detail}");
    d.ra_ok(
        "a2",
        &[
            "ra",
            "verify-identity",
            &id,
            "--method",
            "face-to-face",
            "--document",
            "public-official ID card 12-3456",
        ],
    );
    let v = d.ra_ok("a2", &["ra", "approve", &id, "--out", "hong.pem"]);
    assert_eq!(v["request"]["status"], "issued", "{v}");
    assert_eq!(v["request"]["identity"]["method"], "face-to-face");
    d.env.verify("hong.pem");
    let serial = v["certificate"]["serial"].as_str().unwrap().to_string();
    Hong { id, serial, ..hong }
}

/// Hong's certificate at the RA: an official is no operator, refused and
/// audited at most once a second.
fn step_an_officials_certificate_is_no_operators(d: &Deployment, hong: &Hong) {
    let serial = hong.serial.as_str();
    // An official's certificate (clientAuth, from the RA's root) is no operator's:
    // refused, and audited at most once a second, so holders cannot flood the log.
    let chain = std::fs::read_to_string(d.env.path("hong.pem")).unwrap()
        + &std::fs::read_to_string(d.env.path("mois.pem")).unwrap();
    std::fs::write(d.env.path("hong.chain.pem"), chain).unwrap();
    // Everything held back before is audited first.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (records, counted) = d.unidentified_refusals();
    for _ in 0..5 {
        let (_, out) = d.curl(
            "ra",
            "/v1/whoami",
            Some(("hong.chain.pem", "hong.key")),
            None,
        );
        assert!(
            out.ends_with("403") && out.contains("not an RA operator"),
            "{out}"
        );
    }
    // The ones held back are counted in a record at the end of their second.
    d.unidentified_refusals_reach(counted, 5);
    let audited = d.unidentified_refusals().0 - records;
    assert!(
        (1..=2).contains(&audited),
        "{audited} records of 5 refusals"
    );
    assert_eq!(d.env.serial_of("hong.pem"), serial);
}

/// The same request replayed gives the first certificate; the same key with
/// another request, and a broken CSR, are refused and audited with their reasons.
/// Returns the other subject and its CSR.
fn step_replay_conflict_and_broken_csr(d: &Deployment, hong: &Hong) -> (String, String) {
    let serial = hong.serial.as_str();
    let submit = hong.submit();
    // The same request replayed: the first request and certificate, no second one.
    let certs = d.certificates();
    let v = d.ra_ok("a1", &submit);
    assert_eq!(v["replayed"], true, "{v}");
    assert_eq!(v["certificate"]["serial"], serial);
    assert_eq!(d.certificates(), certs);
    // The same key with a different request is refused, and audited with its
    // reason, as a broken CSR is (BR §5.4.1: rejected requests are logged; issue
    // 28, point 10).
    let refusals = d.refusals();
    let (other, csr2) = official(d, "hong2", A);
    let detail = d.ra_refused(
        "a1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "hong-1",
            "--profile",
            "official-sign",
            "--subject",
            &other,
            "--csr",
            &csr2,
        ],
        "conflict",
    );
    assert!(detail.contains("different request"), "{detail}");
    let pem = std::fs::read_to_string(d.env.path(&csr2)).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = openssl::base64::decode_block(&b64).unwrap();
    let last = der.len() - 1;
    der[last] ^= 1;
    std::fs::write(
        d.env.path("broken.csr"),
        format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            openssl::base64::encode_block(&der)
        ),
    )
    .unwrap();
    let detail = d.ra_refused(
        "a1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "broken-1",
            "--profile",
            "official-sign",
            "--subject",
            &other,
            "--csr",
            "broken.csr",
        ],
        "bad_signature",
    );
    assert!(detail.contains("signature"), "{detail}");
    assert_eq!(d.refusals(), refusals + 2);
    let kinds: Vec<String> = d
        .refusal_records()
        .iter()
        .map(|e| {
            let detail: Value = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
            format!("{} {}", e["actor"], detail["kind"])
        })
        .collect();
    for kind in ["conflict", "bad_signature"] {
        assert!(
            kinds.iter().any(|k| k.contains("a1") && k.contains(kind)),
            "{kind}: {kinds:?}"
        );
    }
    (other, csr2)
}

/// Another RA's operator, and a profile outside the RA's scope: refused.
fn step_requests_outside_the_ras_scope(d: &Deployment, hong: &Hong) {
    let (subject, csr) = (hong.subject.as_str(), hong.csr.as_str());
    // An operator of RA B asking for a subject of institution A.
    let (certs, refusals) = (d.certificates(), d.refusals());
    let detail = d.ra_refused(
        "b1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "x-1",
            "--profile",
            "official-km",
            "--subject",
            subject,
            "--csr",
            csr,
        ],
        "unauthorized",
    );
    assert!(
        detail.contains("outside the institutions of RA `B`"),
        "{detail}"
    );
    // A profile outside the RA's scope.
    let detail = d.ra_refused(
        "a1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "x-2",
            "--profile",
            "institution-sign",
            "--subject",
            subject,
            "--csr",
            csr,
        ],
        "unauthorized",
    );
    assert!(detail.contains("outside the scope of RA `A`"), "{detail}");
    assert_eq!(d.certificates(), certs);
    assert_eq!(d.refusals(), refusals + 2);
}

/// No client certificate, or one of another CA: refused at the RA and the CA.
fn step_callers_without_a_certificate_of_the_pki(d: &Deployment) {
    // No client certificate: refused by the RA and by the CA.
    let (code, out) = d.curl("ra", "/v1/whoami", None, None);
    assert_eq!(code, 0);
    assert!(
        out.ends_with("403") && out.contains("\"unauthorized\""),
        "{out}"
    );
    let (_, out) = d.curl("ca", "/v1/certificates", None, Some("{}"));
    assert!(
        out.ends_with("403") && out.contains("requires a client certificate"),
        "{out}"
    );

    // A certificate from another CA: the handshake fails.
    d.env.openssl_ok(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "rogue.key",
        "-out",
        "rogue.pem",
        "-subj",
        "/CN=Rogue Operator/O=Government of Korea/C=KR",
        "-days",
        "30",
        "-addext",
        "extendedKeyUsage=clientAuth",
    ]);
    let (code, _) = d.curl("ra", "/v1/whoami", Some(("rogue.pem", "rogue.key")), None);
    assert_ne!(
        code, 0,
        "a certificate of another CA must not complete the handshake"
    );
}

#[test]
fn ra_and_ca_services_over_mtls_sqlite() {
    workflow_and_refusals(Backend::Sqlite);
}

#[test]
fn ra_and_ca_services_over_mtls_postgres() {
    workflow_and_refusals(Backend::Postgres);
}
