//! The audit chain: an edit rebuilt behind the checkpoints, profile changes, and
//! a deleted checkpoint.

use super::*;

// Issue 9.8: the audit chain is unkeyed, so someone who can write to the store and
// knows the algorithm can edit a row and rebuild every hash after it. Signed
// checkpoints outside the store catch that; OpenSSL verifies them on its own.
both_backends!(
    audit_chain_rebuilt_after_an_edit_is_caught_by_signed_checkpoints_sqlite,
    audit_chain_rebuilt_after_an_edit_is_caught_by_signed_checkpoints_postgres,
    |env: &Env| {
        if !require("openssl") {
            return;
        }
        env.hierarchy();
        env.issue_official("a.pem");
        let cp = env.json(&["audit", "checkpoint"]);
        let file = cp["file"].as_str().unwrap().to_string();
        let sig = file.replace(".json", ".sig");
        let out = env.openssl_ok(&[
            "dgst",
            "-sha256",
            "-verify",
            cp["public_key"].as_str().unwrap(),
            "-signature",
            &sig,
            &file,
        ]);
        assert!(out.contains("Verified OK"), "{out}");
        env.ok(&["audit", "verify"]);

        // The attack: rewrite the subject in the first cert.issue row and rebuild the
        // chain from there, head included.
        let rt = crate::support::runtime();
        rt.block_on(async {
            use sqlx::Row;
            sqlx::any::install_default_drivers();
            let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&env.store)
                .await
                .unwrap();
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, target, detail FROM audit_log ORDER BY seq",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            let mut prev = vec![0u8; 32];
            let mut edited = false;
            for r in &rows {
                let seq: i64 = r.get("seq");
                let at: i64 = r.get("at");
                let actor: String = r.get("actor");
                let action: String = r.get("action");
                let target: String = r.get("target");
                let mut detail: String = r.get("detail");
                if !edited && action == "cert.issue" && detail.contains("Hong Gildong") {
                    detail = detail.replace("Hong Gildong", "Kim Forged");
                    edited = true;
                }
                let canonical =
                    serde_json::to_vec(&(seq, at, &actor, &action, &target, &detail)).unwrap();
                let mut h = openssl::sha::Sha256::new();
                h.update(&prev);
                h.update(&canonical);
                let hash = h.finish().to_vec();
                sqlx::query(
                    "UPDATE audit_log SET detail = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
                )
                .bind(&detail)
                .bind(&prev)
                .bind(&hash)
                .bind(seq)
                .execute(&mut c)
                .await
                .unwrap();
                prev = hash;
            }
            assert!(edited);
            sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
                .bind(&prev)
                .execute(&mut c)
                .await
                .unwrap();
        });
        // The chain alone cannot tell: against a directory without checkpoints the
        // only problem is that they are missing (the audit key exists).
        std::fs::create_dir_all(env.path("no-checkpoints")).unwrap();
        let r = env.fails(&[
            "audit",
            "verify",
            "--checkpoints",
            "no-checkpoints",
            "--output",
            "json",
        ]);
        let v = first_json(&r.stdout);
        let problems = v["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{v}");
        assert!(
            problems[0]["problem"]
                .as_str()
                .unwrap()
                .contains("no checkpoint"),
            "{v}"
        );
        // The checkpoint can.
        let r = env.fails(&["audit", "verify"]);
        assert!(
            r.stdout.contains("the chain was rebuilt")
                || r.stderr.contains("the chain was rebuilt"),
            "{}{}",
            r.stdout,
            r.stderr
        );
        // A checkpoint rewritten to match the rebuilt chain no longer verifies; a
        // checkpoint directory whose public key was swapped is named; a deleted
        // checkpoint breaks the link of the next one.
        let dir = std::path::Path::new(&file).parent().unwrap().to_path_buf();
        let pub_copy = dir.join("audit.pub.pem");
        let saved = std::fs::read(&pub_copy).unwrap();
        env.openssl_ok(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "other.key",
        ]);
        let other = env.openssl_ok(&["pkey", "-in", "other.key", "-pubout"]);
        std::fs::write(&pub_copy, other).unwrap();
        let r = env.fails(&["audit", "verify"]);
        assert!(
            (r.stdout.clone() + &r.stderr).contains("is not the trusted audit key"),
            "{}",
            r.stdout
        );
        std::fs::write(&pub_copy, saved).unwrap();
        let mut forged: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        forged["hash"] = serde_json::json!("00".repeat(32));
        std::fs::write(&file, serde_json::to_string_pretty(&forged).unwrap() + "\n").unwrap();
        let r = env.fails(&["audit", "verify"]);
        assert!(
            (r.stdout.clone() + &r.stderr)
                .contains("signature does not verify under the audit key"),
            "{}{}",
            r.stdout,
            r.stderr
        );
    }
);

// Issue 9.8: profile changes are state changes, and audited.
#[test]
fn profile_changes_are_audited() {
    let env = Env::new(Backend::Sqlite).unwrap();
    env.hierarchy();
    let recorded = |env: &Env| -> Vec<serde_json::Value> {
        env.json(&["audit", "log", "--limit", "100"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "profiles.change")
            .cloned()
            .collect()
    };
    assert_eq!(recorded(&env).len(), 1, "the first load is recorded once");
    env.issue_official("a.pem");
    assert_eq!(
        recorded(&env).len(),
        1,
        "unchanged profiles are not recorded again"
    );
    let dir = env.policies_copy();
    let edited = std::fs::read_to_string(dir.join("official-sign.toml"))
        .unwrap()
        .replace("validity_days = 730", "validity_days = 365");
    std::fs::write(dir.join("official-sign.toml"), edited).unwrap();
    env.ok(&[
        "--policies",
        dir.to_str().unwrap(),
        "cert",
        "issue",
        "--ca",
        "mois",
        "--profile",
        "official-sign",
        "--subject",
        OFFICIAL,
        "--generate-key",
        "--key-out",
        "b.key",
        "--out",
        "b.pem",
    ]);
    let changes = recorded(&env);
    assert_eq!(changes.len(), 2, "{changes:?}");
    let detail: serde_json::Value =
        serde_json::from_str(changes[0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(
        detail["changed"],
        serde_json::json!(["official-sign"]),
        "{detail}"
    );
    env.ok(&["audit", "verify"]);
}

// Checkpoints are linked: deleting one (to hide what it fixed) is named.
#[test]
fn a_deleted_audit_checkpoint_is_noticed() {
    let env = Env::new(Backend::Sqlite).unwrap();
    env.hierarchy();
    let first = env.json(&["audit", "checkpoint"]);
    env.issue_official("a.pem");
    let second = env.json(&["audit", "checkpoint"]);
    env.issue_official("b.pem");
    env.json(&["audit", "checkpoint"]);
    assert_ne!(first["seq"], second["seq"]);
    env.ok(&["audit", "verify"]);
    let victim = second["file"].as_str().unwrap();
    std::fs::remove_file(victim).unwrap();
    std::fs::remove_file(victim.replace(".json", ".sig")).unwrap();
    let r = env.fails(&["audit", "verify"]);
    assert!(
        (r.stdout.clone() + &r.stderr).contains("a checkpoint was deleted"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}
