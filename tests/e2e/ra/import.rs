//! Bulk imports through the RA: a CA killed in the middle of one, and a thousand
//! concurrent issuances.

use serde_json::Value;

use super::*;

/// `n` officials of institution B in `import.csv`, each with its own P-256 key and
/// CSR (made in-process with OpenSSL) and an identity verification.
fn import_file(env: &Env, n: usize) {
    import_rows(env, "import.csv", 0..n, 0);
}

/// A CSV of officials `rows` in `file`, each with a P-256 CSR: of a fresh key,
/// or of one of `keys` shared keys when that is not 0.
fn import_rows(env: &Env, file: &str, rows: std::ops::Range<usize>, keys: usize) {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509NameBuilder, X509ReqBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    std::fs::create_dir_all(env.path("csr")).unwrap();
    let mut csv = String::from("request_id,subject,csr,identity_method,identity_document\n");
    let fresh = || PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let shared: Vec<_> = (0..keys).map(|_| fresh()).collect();
    for i in rows {
        let cn = format!("Official {i}({:09})", 100_000_000 + i);
        let key = match keys {
            0 => fresh(),
            k => shared[i % k].clone(),
        };
        let mut name = X509NameBuilder::new().unwrap();
        for (k, v) in [
            ("C", "KR"),
            ("O", "Government of Korea"),
            ("OU", "Ministry of Education"),
            ("OU", "people"),
            ("CN", cn.as_str()),
        ] {
            name.append_entry_by_text(k, v).unwrap();
        }
        let mut req = X509ReqBuilder::new().unwrap();
        req.set_subject_name(&name.build()).unwrap();
        req.set_pubkey(&key).unwrap();
        req.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        std::fs::write(
            env.path(&format!("csr/moe-{i}.csr")),
            req.build().to_pem().unwrap(),
        )
        .unwrap();
        csv += &format!(
            "moe-{i},\"CN={cn}, OU=people, {B}\",csr/moe-{i}.csr,face-to-face,public-official ID {i}\n"
        );
    }
    std::fs::write(env.path(file), csv).unwrap();
}

/// The first JSON document of a command's output (an import that fails prints its
/// report, then the error).
fn first_json(out: &str) -> Value {
    serde_json::Deserializer::from_str(out)
        .into_iter::<Value>()
        .next()
        .unwrap_or_else(|| panic!("no JSON in {out}"))
        .unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Issued certificates of the imported officials, by subject: each must appear
/// exactly once.
fn imported(d: &Deployment) -> std::collections::HashMap<String, usize> {
    let v = d.env.json(&[
        "cert",
        "list",
        "--ca",
        "mois",
        "--profile",
        "official-sign",
        "--status",
        "issued",
        "--limit",
        "100000",
    ]);
    let mut by_subject = std::collections::HashMap::new();
    for c in v.as_array().unwrap() {
        let subject = c["subject"].as_str().unwrap().to_string();
        if subject.contains("Ministry of Education") {
            *by_subject.entry(subject).or_insert(0) += 1;
        }
    }
    by_subject
}

/// Issue 10's fault test: the CA service is killed in the middle of a bulk
/// import and started again; rerunning the same file finishes the import, nothing
/// is issued twice, and the audit chain verifies.
fn import_survives_a_killed_ca(backend: Backend) {
    if !require("curl") || !require("openssl") {
        return;
    }
    let Some(mut d) = Deployment::start(backend) else {
        return;
    };
    let rows = 150;
    import_file(&d.env, rows);
    let import = [
        "ra",
        "import",
        "--csv",
        "import.csv",
        "--profile",
        "official-sign",
    ];
    // The CA dies (abort: no clean shutdown) on its 31st issuance, between
    // recording the certificate and signing it: that row (and any other in
    // flight) is left pending.
    d.restart_ca(&[("GPKI_FAILPOINT", "after-record@31")]);
    let o = d
        .ra_command("b1", &[&import[..], &["--concurrency", "4"]].concat())
        .output()
        .unwrap();
    assert!(d.ca.process.has_exited(), "the CA did not die");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let first = first_json(&out);
    eprintln!(
        "import with the CA killed: {} issued, {} failed",
        first["issued"],
        first["failed"].as_array().map(Vec::len).unwrap_or(0)
    );
    // With 4 in flight, up to 3 answers besides the 31st may be lost with the CA.
    let issued_first = first["issued"].as_u64().unwrap();
    assert!((27..=30).contains(&issued_first), "{first}");
    assert_eq!(
        first["failed"].as_array().unwrap().len() as u64,
        rows as u64 - issued_first,
        "{first}"
    );
    assert!(
        first["failed"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] == "unavailable"),
        "{first}"
    );
    let pending = d
        .env
        .json(&["cert", "list", "--ca", "mois", "--status", "pending"]);
    let pending = pending.as_array().unwrap().len();
    assert!((1..=4).contains(&pending), "{pending} pending rows");

    // Started again (after the stale-pending age of 1 s), the same file finishes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    d.ca = spawn(&d.env, "gpki-ca", "ca.toml", d.ca.port);
    let o = d.ra_command("b1", &import).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let second: Value = serde_json::from_str(&out).unwrap();
    eprintln!(
        "rerun: {} issued, {} done before; audit: {} pending rows abandoned",
        second["issued"],
        second["already_done"],
        d.env
            .json(&["audit", "log", "--limit", "1000000"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "cert.abandon")
            .count()
    );
    assert_eq!(second["failed"].as_array().unwrap().len(), 0, "{second}");
    assert_eq!(
        second["issued"].as_u64().unwrap() + second["already_done"].as_u64().unwrap(),
        rows as u64,
        "{second}"
    );
    assert_eq!(second["already_done"], issued_first, "{second}");
    // The pending row was abandoned (its serial unsigned, reserved), not signed.
    let abandoned = d
        .env
        .json(&["cert", "list", "--ca", "mois", "--status", "abandoned"]);
    assert_eq!(abandoned.as_array().unwrap().len(), pending, "{abandoned}");
    // Every official once: nothing issued twice, nothing lost.
    let by_subject = imported(&d);
    assert_eq!(by_subject.len(), rows, "{by_subject:?}");
    assert!(by_subject.values().all(|n| *n == 1), "{by_subject:?}");
    // A third run submits nothing new.
    let certs = d.certificates();
    let third = d.ra_ok("b1", &import);
    assert_eq!(third["already_done"], rows, "{third}");
    assert_eq!(d.certificates(), certs);
    d.env.ok(&["audit", "verify"]);
}

#[test]
fn ra_import_survives_a_killed_ca_sqlite() {
    import_survives_a_killed_ca(Backend::Sqlite);
}

#[test]
fn ra_import_survives_a_killed_ca_postgres() {
    import_survives_a_killed_ca(Backend::Postgres);
}

/// Issue 10's load test: 1,000 issuance requests at once through RA and CA on
/// PostgreSQL. Every one is answered, each official gets exactly one certificate,
/// and the serials are distinct (the store's unique index would refuse a
/// duplicate; this counts them). The officials share 8 keys and the CA's writer
/// runs 3 groups at once, each taking the key locks of its recordings: in one
/// order, so the database reports no deadlock.
#[test]
fn ra_thousand_concurrent_issuances_postgres() {
    if !require("curl") || !require("openssl") {
        return;
    }
    let Some(mut d) = Deployment::start(Backend::Postgres) else {
        return;
    };
    d.restart_ca(&[("GPKI_STORE_WRITER_LANES", "3")]);
    let rows = 1000;
    import_rows(&d.env, "import.csv", 0..rows, 8);
    let o = d
        .ra_command(
            "b1",
            &[
                "ra",
                "import",
                "--csv",
                "import.csv",
                "--profile",
                "official-sign",
                "--concurrency",
                "1000",
            ],
        )
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["issued"], rows, "{report}");
    let by_subject = imported(&d);
    assert_eq!(by_subject.len(), rows);
    assert!(by_subject.values().all(|n| *n == 1));
    let v = d.env.json(&[
        "cert",
        "list",
        "--ca",
        "mois",
        "--profile",
        "official-sign",
        "--limit",
        "100000",
    ]);
    let serials: std::collections::HashSet<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(serials.len(), v.as_array().unwrap().len());
    let listed = d.ra_ok(
        "b1",
        &["ra", "requests", "--status", "issued", "--limit", "10000"],
    );
    assert_eq!(listed["requests"].as_array().unwrap().len(), rows);

    // The server drops every connection the services hold (a restart, a
    // failover, an idle timeout on the way). Pooled connections idle past a
    // second are checked before use, so the next request is answered on new ones
    // instead of failing on a dead one.
    runtime().block_on(sql(
        &d.env.store,
        &["SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
           WHERE datname = current_database() AND pid <> pg_backend_pid()"],
    ));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // A backend reports its statistics as it exits, so the count is complete.
    let deadlocks: i64 = runtime().block_on(async {
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&d.env.store)
            .await
            .unwrap();
        sqlx::query_scalar(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    });
    assert_eq!(deadlocks, 0, "deadlocks in the load test's database");
    import_rows(&d.env, "after.csv", rows..rows + 1, 0);
    let after = d.ra_ok(
        "b1",
        &[
            "ra",
            "import",
            "--csv",
            "after.csv",
            "--profile",
            "official-sign",
        ],
    );
    assert_eq!(after["issued"], 1, "{after}");
}
