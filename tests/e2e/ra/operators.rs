//! Steps of the workflow about operators and revocation: renewal windows,
//! administrators' enrolments under dual control, suspended and revoked operators.

use std::process::Command;

use super::workflow::Hong;
use super::*;

/// Renewal opens 400 days before expiry: a fresh certificate is not renewed.
pub(super) fn step_early_renewal_refused(d: &Deployment, hong: &Hong) {
    let serial = hong.serial.as_str();
    // Renewal opens 400 days before expiry here; a two-year certificate just issued
    // is refused, and nothing is recorded (dev_ra.rs renews inside the window).
    let certs = d.certificates();
    let detail = d.ra_refused(
        "a2",
        &[
            "ra",
            "renew",
            "--idempotency-key",
            "hong-renew",
            "--serial",
            serial,
        ],
        "policy_violation",
    );
    assert!(detail.contains("may be renewed from"), "{detail}");
    assert_eq!(d.certificates(), certs);
}

/// An administrator's enrolment waits for a second administrator; a5, enrolled,
/// is suspended and activated, and a plain operator cannot revoke it.
pub(super) fn step_administrator_enrolment_under_dual_control(d: &Deployment) {
    // Under dual control, an administrator's enrolment waits for a second
    // administrator: not the submitter, not a plain operator.
    let a5 = format!("CN=Operator a5(000000005), OU=RA, {A}");
    d.env.ok(&[
        "key",
        "new",
        "--key-out",
        "a5.key",
        "--subject",
        &a5,
        "--csr-out",
        "a5.csr",
    ]);
    let enrol = [
        "ra",
        "operator",
        "enrol",
        "--idempotency-key",
        "enrol-a5",
        "--name",
        "a5",
        "--subject",
        &a5,
        "--csr",
        "a5.csr",
        "--out",
        "a5.chain.pem",
    ];
    let detail = d.ra_refused("a2", &enrol, "unauthorized");
    assert!(detail.contains("not an administrator"), "{detail}");
    let v = d.ra_ok("a1", &enrol);
    assert_eq!(v["request"]["status"], "submitted", "{v}");
    assert_eq!(v["request"]["kind"], "enrol", "{v}");
    let enrol_id = v["request"]["id"].to_string();
    // A plain operator can neither reject it nor get an ra-operator certificate
    // by a plain submission.
    let detail = d.ra_refused(
        "a2",
        &["ra", "reject", &enrol_id, "--reason", "no"],
        "unauthorized",
    );
    assert!(detail.contains("not an administrator"), "{detail}");
    let detail = d.ra_refused(
        "a2",
        &[
            "ra",
            "submit",
            "--idempotency-key",
            "sneaky-op",
            "--profile",
            "ra-operator",
            "--subject",
            &a5,
            "--csr",
            "a5.csr",
        ],
        "unauthorized",
    );
    assert!(detail.contains("enrolled by administrators"), "{detail}");
    let detail = d.ra_refused("a1", &["ra", "approve", &enrol_id], "unauthorized");
    assert!(detail.contains("dual control"), "{detail}");
    let detail = d.ra_refused("a2", &["ra", "approve", &enrol_id], "unauthorized");
    assert!(detail.contains("not an administrator"), "{detail}");
    let v = d.ra_ok("a3", &["ra", "approve", &enrol_id]);
    assert_eq!(v["request"]["status"], "issued", "{v}");
    assert_eq!(v["operator"]["name"], "a5", "{v}");
    // The submitter's replay hands over the certificate with its chain.
    d.ra_ok("a1", &enrol);
    assert_eq!(
        std::fs::read_to_string(d.env.path("a5.chain.pem"))
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    let who = d.ra_ok("a5", &["ra", "whoami"]);
    assert_eq!(who["operator"]["name"], "a5", "{who}");
    let a5_id = who["operator"]["id"].to_string();
    // Suspended, a5 is refused at once; activated, served again.
    d.ra_ok("a1", &["ra", "operator", "suspend", &a5_id]);
    let refusals = d.refusals();
    let detail = d.ra_refused("a5", &["ra", "whoami"], "unauthorized");
    assert!(detail.contains("suspended"), "{detail}");
    // A known certificate's refusals are audited every time, under its name.
    d.ra_refused("a5", &["ra", "whoami"], "unauthorized");
    assert_eq!(d.refusals(), refusals + 2);
    d.ra_ok("a1", &["ra", "operator", "activate", &a5_id]);
    d.ra_ok("a5", &["ra", "whoami"]);
    // A plain operator cannot revoke an operator's certificate.
    let a5_serial = d.env.serial_of("a5.chain.pem");
    let detail = d.ra_refused(
        "a2",
        &[
            "ra",
            "revoke",
            "--idempotency-key",
            "rev-a5",
            "--serial",
            &a5_serial,
            "--reason",
            "affiliationChanged",
        ],
        "unauthorized",
    );
    assert!(detail.contains("not an administrator"), "{detail}");
    d.ra_ok("a5", &["ra", "whoami"]);
}

/// a2's certificate revoked in the store is refused within a second, its
/// revocation through the RA is done, and its retries are audited once a second.
pub(super) fn step_revoked_operator_refused_within_a_second(d: &Deployment) {
    // A revoked operator certificate is refused within a second of its
    // revocation in the store (here by the offline CLI, not through the service,
    // whose cache of callers keeps an answer for at most auth_cache_ms = 500).
    let a2_serial = d.env.serial_of("a2.pem");
    d.ra_ok("a2", &["ra", "requests"]);
    d.env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "mois",
        "--serial",
        &a2_serial,
        "--reason",
        "affiliationChanged",
    ]);
    let revoked = std::time::Instant::now();
    let detail = d.ra_refused_within_a_second("a2", &["ra", "requests"], "unauthorized", revoked);
    assert!(detail.contains("revoked"), "{detail}");
    // Revoked already at the CA, a2's certificate revoked through the RA is done:
    // the CA's conflict carries the reason `already_revoked`, which the RA acts on.
    let done = d.ra_ok(
        "a1",
        &[
            "ra",
            "revoke",
            "--idempotency-key",
            "rev-a2",
            "--serial",
            &a2_serial,
            "--reason",
            "affiliationChanged",
        ],
    );
    assert_eq!(done["request"]["status"], "revoked", "{done}");
    assert_eq!(done["certificate"]["status"], "revoked", "{done}");
    // A client retrying in a loop does not flood the audit log: its refusals are
    // audited at most once a second, with a count.
    d.env.openssl_ok(&[
        "pkey",
        "-in",
        "a2.key",
        "-passin",
        "file:outpass",
        "-out",
        "a2.plain.key",
    ]);
    // Once the refusals above are all audited, eight more in a row make at most
    // a record a second, and count all eight.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (records, counted) = d.unidentified_refusals();
    let url = format!("https://ra.gpki.go.kr:{}/v1/whoami", d.ra.port);
    let o = Command::new("curl")
        .current_dir(d.env.path(""))
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "\ncode=%{http_code}\n",
            "--cacert",
            "root.pem",
        ])
        .args([
            "--cert",
            "a2.chain.pem",
            "--key",
            "a2.plain.key",
            "--resolve",
        ])
        .arg(format!("ra.gpki.go.kr:{}:127.0.0.1", d.ra.port))
        .args([&url, &url, &url, &url, &url, &url, &url, &url])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("code=403").count(), 8, "{out}");
    d.unidentified_refusals_reach(counted, 8);
    let audited = d.unidentified_refusals().0 - records;
    assert!(
        (1..=3).contains(&audited),
        "{audited} records of 8 refusals"
    );
}

/// Hong's certificate revoked through the RA is revoked in the store at once.
pub(super) fn step_revocation_through_the_ra(d: &Deployment, hong: &Hong) {
    let serial = hong.serial.as_str();
    // Revocation through the RA reaches the store at once.
    let v = d.ra_ok(
        "a1",
        &[
            "ra",
            "revoke",
            "--idempotency-key",
            "rev-1",
            "--serial",
            serial,
            "--reason",
            "keyCompromise",
            "--identity-method",
            "contact-free",
            "--identity-document",
            "mobile ID",
        ],
    );
    assert_eq!(v["request"]["status"], "revoked", "{v}");
    let shown = d
        .env
        .json(&["cert", "show", "--ca", "mois", "--serial", serial]);
    assert_eq!(shown["status"], "revoked", "{shown}");
}

/// a2 suspended by an administrator of A is no operator B's administrator knows.
pub(super) fn step_suspended_operator_is_not_found_elsewhere(d: &Deployment) {
    // An operator suspended by an admin is refused; reactivated, served again.
    let ops = d.ra_ok("a1", &["ra", "operator", "list"]);
    let a2 = ops["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "a2")
        .unwrap()["id"]
        .to_string();
    d.ra_ok("a1", &["ra", "operator", "suspend", &a2]);
    let detail = d.ra_refused("b1", &["ra", "operator", "suspend", &a2], "not_found");
    assert!(detail.contains("no operator"), "{detail}");
}
