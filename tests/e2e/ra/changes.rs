//! Steps of the workflow after the standing of a CA or an RA changes, and the
//! audit and health checks at the end of it.

use std::process::Command;

use serde_json::Value;

use super::*;

/// A replay is answered with what the first call made even after the issuing CA
/// is held; returns the request's body and its certificate's serial.
pub(super) fn step_replay_after_the_ca_is_held(d: &Deployment) -> (String, String) {
    // A replay is answered with what the first call made even when the call
    // itself would now be refused: here the issuing CA has since been put on
    // hold, which stops it signing anything new. RA C issues from a CA of its
    // own, so the hold leaves the services' certificates (from mois) in force.
    d.env.ok(&[
        "ca",
        "create",
        "--parent",
        "root",
        "--name",
        "late",
        "--subject",
        "CN=Test Late CA, OU=GPKI, O=Government of Korea, C=KR",
        "--key-type",
        "p256",
        "--path-len",
        "0",
        "--out",
        "late.pem",
    ]);
    d.env.ok(&[
        "ra",
        "create",
        "--name",
        "C",
        "--ca",
        "late",
        "--subtree",
        A,
        "--profiles",
        "official-sign",
        "--renew-window-days",
        "400",
        "--host",
        "ra-host-1",
    ]);
    let (subject, csr) = official(d, "late", A);
    let body = serde_json::json!({ "ra": "C", "request_id": "late-1", "profile": "official-sign", "subject": subject, "csr": std::fs::read_to_string(&csr).unwrap() }).to_string();
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(out.ends_with("201"), "{out}");
    let first: Value = serde_json::from_str(out.rsplit_once('\n').unwrap().0).unwrap();
    let serial = first["serial"].as_str().unwrap();
    let late = d.env.serial_of("late.pem");
    d.env.ok(&[
        "cert",
        "revoke",
        "--ca",
        "root",
        "--serial",
        &late,
        "--reason",
        "certificateHold",
    ]);
    let certs = d.certificates();
    let fresh = body.replace("late-1", "late-2");
    let out = d.issue_at_ca_as_ra_host(&fresh);
    let (reply, status) = out.rsplit_once('\n').unwrap();
    assert!(
        status == "409" && reply.contains("`late`") && reply.contains("hold"),
        "{out}"
    );
    let out = d.issue_at_ca_as_ra_host(&body);
    assert!(
        out.ends_with("200") && out.contains(serial) && out.contains("\"replayed\":true"),
        "{out}"
    );
    assert_eq!(d.certificates(), certs);
    (body, serial.to_string())
}

/// An RA's scope and status changed from the command line hold within a second,
/// each change audited.
pub(super) fn step_ra_scope_changes_hold_within_a_second(d: &Deployment) {
    // An RA's scope changed from the command line holds within a second (the RA
    // service trusts an operator's standing, RA included, for auth_cache_ms): B
    // loses official-sign, then is suspended; each refusal changes nothing.
    // Reactivated with it, B issues again (no dual control, identity given).
    let (b_subject, b_csr) = official(d, "b-later", B);
    let b_submit = |key: &str| -> Vec<String> {
        [
            "ra",
            "submit",
            "--idempotency-key",
            key,
            "--profile",
            "official-sign",
            "--subject",
            &b_subject,
            "--csr",
            &b_csr,
            "--identity-method",
            "face-to-face",
            "--identity-document",
            "public-official ID card 98-7654",
        ]
        .map(String::from)
        .to_vec()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let v = d.env.json(&[
        "ra",
        "update",
        "--name",
        "B",
        "--profiles",
        "official-km,ra-operator",
    ]);
    assert_eq!(
        v["ra"]["profiles"],
        serde_json::json!(["official-km", "ra-operator"]),
        "{v}"
    );
    let certs = d.certificates();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let detail = d.ra_refused("b1", &args(&b_submit("b-later-1")), "unauthorized");
    assert!(detail.contains("outside the scope of RA `B`"), "{detail}");
    let v = d.env.json(&[
        "ra",
        "update",
        "--name",
        "B",
        "--suspend",
        "--profiles",
        "official-sign,official-km,ra-operator",
    ]);
    assert_eq!(v["ra"]["status"], "suspended", "{v}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let detail = d.ra_refused("b1", &args(&b_submit("b-later-2")), "unauthorized");
    assert!(detail.contains("suspended"), "{detail}");
    assert_eq!(d.certificates(), certs);
    // Nothing to change, and a change the CLI cannot check: refused.
    let r = d.env.fails(&["ra", "update", "--name", "B", "--suspend"]);
    assert!(r.stderr.contains("already as asked"), "{}", r.stderr);
    let r = d.env.fails(&[
        "ra",
        "update",
        "--name",
        "B",
        "--profiles",
        "no-such-profile",
    ]);
    assert!(r.stderr.contains("no-such-profile"), "{}", r.stderr);
    d.env.json(&["ra", "update", "--name", "B", "--activate"]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let v = d.ra_ok("b1", &args(&b_submit("b-later-3")));
    assert_eq!(v["request"]["status"], "issued", "{v}");
    let audit = d.env.json(&["audit", "log", "--limit", "1000000"]);
    let updates: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "ra.update" && e["target"] == "ra:B")
        .collect();
    assert_eq!(updates.len(), 3, "{updates:?}");
    let suspended = |e: &&&Value| {
        let detail: Value = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
        detail["status"]["to"] == "suspended"
    };
    assert_eq!(updates.iter().filter(suspended).count(), 1, "{updates:?}");
}

/// The audit chain verifies and is anchored; health and metrics are behind the
/// mutual TLS and never show the store.
pub(super) fn step_audit_anchored_and_health_behind_mtls(d: &Deployment) {
    // The audit chain is intact after all of it, and anchored by the checkpoints
    // the CA service signs on its schedule (issue 28, point 8).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let verified = d.env.json(&["audit", "verify"]);
    assert!(
        verified["anchoring"]["checkpoints"].as_i64().unwrap() >= 2
            && verified["anchoring"]["anchored_seq"].as_i64().unwrap() > 1,
        "{verified}"
    );
    // Health and metrics are behind the mutual TLS: refused without a client
    // certificate, answered with one, and health never shows the store's URL
    // (issue 28, point 12).
    let client = Some(("ra-host.chain.pem", "health.plain.key"));
    for which in ["ca", "ra"] {
        for path in ["/healthz", "/metrics"] {
            let (_, out) = d.curl(which, path, None, None);
            assert!(
                out.ends_with("403") && out.contains("require a client certificate"),
                "{which}{path}: {out}"
            );
        }
        let (_, health) = d.curl(which, "/healthz", client, None);
        assert!(health.ends_with("200"), "{which}: {health}");
        let store = &d.env.store;
        let db = store.rsplit('/').next().unwrap().split('?').next().unwrap();
        assert!(
            !health.contains("store") && !health.contains(db),
            "{which}: {health}"
        );
    }
    let (_, m) = d.curl("ra", "/metrics", client, None);
    assert!(m.contains("gpki_ra_refusals_total"), "{m}");
    let (_, m) = d.curl("ca", "/metrics", client, None);
    assert!(m.ends_with("200"), "{m}");
}

/// A replay whose certificate cannot be read back is an internal error.
pub(super) fn step_damaged_replay_is_an_internal_error(d: &Deployment, body: &str, serial: &str) {
    // A replay whose recorded certificate cannot be read back (its TBS damaged in
    // the store) is the store's fault: an internal error, not "made for another
    // request", and no second certificate.
    let certs = d.certificates();
    let damaged = damage_tbs(&d.env.store, serial);
    assert_eq!(damaged, 1, "one row damaged");
    let out = d.issue_at_ca_as_ra_host(body);
    assert!(
        out.ends_with("500") && out.contains("\"kind\":\"internal\""),
        "{out}"
    );
    assert_eq!(d.certificates(), certs);
}

/// Overwrites the stored TBS of certificate `serial` with one byte that is no
/// DER; the rows changed.
fn damage_tbs(store: &str, serial: &str) -> usize {
    let out = if let Some(path) = store.strip_prefix("sqlite://") {
        Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys\n\
                 db = sqlite3.connect(sys.argv[1])\n\
                 n = db.execute(\"UPDATE certificates SET tbs = x'00' WHERE serial = ?\", (sys.argv[2],)).rowcount\n\
                 db.commit()\n\
                 print(n)",
                path.split('?').next().unwrap(),
                serial,
            ])
            .output()
            .unwrap()
    } else {
        Command::new("psql")
            .args([store, "-qtAc"])
            .arg(format!(
                "WITH d AS (UPDATE certificates SET tbs = '\\x00'::bytea WHERE serial = '{serial}' RETURNING 1) SELECT count(*) FROM d"
            ))
            .output()
            .unwrap()
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
