//! Steps of the workflow at the CA service, asked directly by the RA host: what
//! it refuses whatever the RA says, and what it replays.

use super::workflow::Hong;
use super::*;

/// An operator's certificate is no RA service, and an RA service asking outside
/// its RA's scope is refused; the CA's audit names the operation.
pub(super) fn step_the_ca_refuses_callers_and_scope(d: &Deployment, hong: &Hong) {
    let (subject, csr) = (hong.subject.as_str(), hong.csr.as_str());
    // An operator's certificate is no RA service: the CA refuses it, and an RA
    // service's certificate asking for a profile outside the RA's scope.
    d.env.openssl_ok(&[
        "pkey",
        "-in",
        "a1.key",
        "-passin",
        "file:outpass",
        "-out",
        "a1.plain.key",
    ]);
    d.env.openssl_ok(&[
        "pkey",
        "-in",
        "ra-host.key",
        "-passin",
        "file:outpass",
        "-out",
        "ra-host.plain.key",
    ]);
    let csr_pem = std::fs::read_to_string(csr).unwrap();
    let body = serde_json::json!({ "ra": "A", "request_id": "direct-1", "profile": "official-km", "subject": subject, "csr": csr_pem }).to_string();
    let (_, out) = d.curl(
        "ca",
        "/v1/certificates",
        Some(("a1.chain.pem", "a1.plain.key")),
        Some(&body),
    );
    assert!(
        out.ends_with("403") && out.contains("not registered as a client"),
        "{out}"
    );
    let body = serde_json::json!({ "ra": "A", "request_id": "direct-2", "profile": "g-ssl", "subject": subject, "csr": csr_pem }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("403") && out.contains("outside the scope of RA `A`"),
        "{out}"
    );
    // The CA's audit record of the refusal names the operation refused.
    let refused = d.refusal_records();
    let scope = refused
        .iter()
        .find(|e| {
            e["action"] == "ca.refuse"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("outside the scope of RA `A`"))
        })
        .expect("the CA audited the refusal");
    assert_eq!(scope["target"], "issue", "{scope}");
}

/// The CA replays by the RA's request id (SANs written twice are the same
/// request, other SANs a conflict) and checks the proof of possession itself.
pub(super) fn step_the_ca_replays_and_checks_possession(d: &Deployment, hong: &Hong) {
    let (subject, csr, id, serial) = (
        hong.subject.as_str(),
        hong.csr.as_str(),
        hong.id.as_str(),
        hong.serial.as_str(),
    );
    let csr_pem = std::fs::read_to_string(csr).unwrap();
    // The CA replays, too: the RA's request id at the CA gives the certificate it made.
    let body = serde_json::json!({ "ra": "A", "request_id": format!("req-{id}"), "profile": "official-sign", "subject": subject, "csr": csr_pem, "sans": ["email:gildong.hong@mois.go.kr"] }).to_string();
    let certs = d.certificates();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("200") && out.contains(serial) && out.contains("\"replayed\":true"),
        "{out}"
    );
    // The same request id asking for other SANs is another request: a conflict,
    // not the first certificate.
    let more_sans = body.replace(
        "[\"email:gildong.hong@mois.go.kr\"]",
        "[\"email:gildong.hong@mois.go.kr\",\"email:minister@mois.go.kr\"]",
    );
    assert_ne!(more_sans, body);
    // The same SANs written twice are the same request: its certificate again.
    let twice = body.replace(
        "[\"email:gildong.hong@mois.go.kr\"]",
        "[\"email:gildong.hong@mois.go.kr\",\"email:gildong.hong@mois.go.kr\"]",
    );
    assert_ne!(twice, body);
    let out = d.issue_at_ca_as_ra_host(&twice);
    assert!(
        out.ends_with("200") && out.contains(serial) && out.contains("\"replayed\":true"),
        "{out}"
    );
    let out = d.issue_at_ca_as_ra_host(&more_sans);
    assert!(
        out.ends_with("409")
            && out.contains("made for another request")
            && out.contains(r#""reason":"request_key_reused""#)
            && out.contains(&format!(r#""serial":"{serial}""#)),
        "{out}"
    );
    assert_eq!(d.certificates(), certs);
    // The CA checks the proof of possession itself: a request whose signature
    // does not verify is refused there, whatever the RA host says, and nothing is
    // recorded.
    d.env
        .openssl_ok(&["req", "-in", csr, "-outform", "DER", "-out", "direct.der"]);
    let mut der = std::fs::read(d.env.path("direct.der")).unwrap();
    let n = der.len();
    der[n - 5] ^= 0x55; // inside the signature value
    std::fs::write(d.env.path("direct-badsig.der"), &der).unwrap();
    d.env.openssl_ok(&[
        "req",
        "-inform",
        "DER",
        "-in",
        "direct-badsig.der",
        "-outform",
        "PEM",
        "-out",
        "direct-badsig.pem",
    ]);
    let bad_pem = std::fs::read_to_string(d.env.path("direct-badsig.pem")).unwrap();
    let bad = serde_json::json!({ "ra": "A", "request_id": "direct-badsig", "profile": "official-sign", "subject": subject, "csr": bad_pem, "sans": ["email:gildong.hong@mois.go.kr"] }).to_string();
    let out = d.issue_at_ca_as_ra_host(&bad);
    assert!(
        out.ends_with("400")
            && out.contains("bad_signature")
            && out.contains("proof of possession"),
        "{out}"
    );
    assert_eq!(d.certificates(), certs);
}

/// SANs outside the RA's domains or smuggled in the CSR, a reused or malformed
/// request id, and an early renewal: refused at the RA and the CA, each audited.
pub(super) fn step_sans_ids_and_renewal_window_at_the_ca(
    d: &Deployment,
    hong: &Hong,
    other: &str,
    csr2: &str,
) {
    let (subject, csr, id, serial) = (
        hong.subject.as_str(),
        hong.csr.as_str(),
        hong.id.as_str(),
        hong.serial.as_str(),
    );
    let csr_pem = std::fs::read_to_string(csr).unwrap();
    // A SAN outside the RA's domains, at the RA and at the CA.
    let (certs, refusals) = (d.certificates(), d.refusals());
    let detail = d.ra_refused(
        "a1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "x-3",
            "--profile",
            "official-sign",
            "--subject",
            subject,
            "--csr",
            csr,
            "--san",
            "email:gildong.hong@moe.go.kr",
        ],
        "unauthorized",
    );
    assert!(detail.contains("outside the domains of RA `A`"), "{detail}");
    let body = serde_json::json!({ "ra": "A", "request_id": "direct-3", "profile": "official-km", "subject": subject, "csr": csr_pem, "sans": ["dns:www.moe.go.kr"] }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("403") && out.contains("outside the domains"),
        "{out}"
    );
    // A CSR cannot carry a SAN past the scope check and the approver: every SAN it
    // asks for must be named in the request, at the RA and at the CA.
    d.env.openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "sneaky.key",
        "-out",
        "sneaky.csr",
        "-subj",
        "/C=KR/O=Government of Korea/OU=Ministry of the Interior and Safety/OU=people/CN=Hong Gildong(001234567)",
        "-addext",
        "subjectAltName=email:minister@moe.go.kr",
    ]);
    let detail = d.ra_refused(
        "a1",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "x-4",
            "--profile",
            "official-km",
            "--subject",
            subject,
            "--csr",
            "sneaky.csr",
            "--san",
            "email:gildong.hong@mois.go.kr",
        ],
        "unauthorized",
    );
    assert!(detail.contains("the CSR asks for SAN"), "{detail}");
    let sneaky = std::fs::read_to_string(d.env.path("sneaky.csr")).unwrap();
    let body = serde_json::json!({ "ra": "A", "request_id": "direct-4", "profile": "official-sign", "subject": subject, "csr": sneaky, "sans": ["email:gildong.hong@mois.go.kr"] }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("403") && out.contains("the CSR asks for SAN"),
        "{out}"
    );
    // The CA's request id names one request: reused for another, a conflict; and
    // it has no `:`, which separates it from the RA's name.
    let csr2_pem = std::fs::read_to_string(csr2).unwrap();
    let body = serde_json::json!({ "ra": "A", "request_id": format!("req-{id}"), "profile": "official-sign", "subject": other, "csr": csr2_pem }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("409") && out.contains("another request"),
        "{out}"
    );
    let body = serde_json::json!({ "ra": "A", "request_id": "B:x", "profile": "official-km", "subject": subject, "csr": csr_pem }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(out.ends_with("400") && out.contains("request_id"), "{out}");
    // The RA's renewal window holds at the CA too: a fresh certificate asked
    // renewed directly by the RA host is refused.
    let early =
        serde_json::json!({ "ra": "A", "request_id": "early-1", "serial": serial }).to_string();
    let out = d
        .curl(
            "ca",
            "/v1/certificates/renew",
            Some(("ra-host.chain.pem", "ra-host.plain.key")),
            Some(&early),
        )
        .1;
    assert!(
        out.ends_with("422") && out.contains("may be renewed from") && out.contains("RA `A`"),
        "{out}"
    );
    assert_eq!(d.certificates(), certs);
    // Four refused for scope, the conflict, the malformed id and the early
    // renewal: each audited.
    assert_eq!(d.refusals(), refusals + 7);
}
