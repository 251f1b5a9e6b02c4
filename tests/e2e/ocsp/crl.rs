//! CRLs served from memory, with their deltas.

use super::*;

// Issue 9.12: CRLs come from memory (read from the store once per CRL number, with
// ETag and Last-Modified), delta CRLs are served, and full CRLs point at them.
both_backends!(
    crls_are_served_from_memory_with_their_delta_sqlite,
    crls_are_served_from_memory_with_their_delta_postgres,
    |env: &Env| {
        if !require("openssl") || !require("curl") || !require("lint_crl") {
            return;
        }
        let (_, serial_b) = setup(env);
        env.ok(&["crl", "generate", "--ca", "mois", "--out", "full1.crl"]);
        let r = Responder::start(env, "crl", &env.store, &["mois"], "");
        let full = format!("{}/crl/mois.crl", r.url);
        let mut etag = String::new();
        for i in 0..20 {
            let (code, h) = get_crl(&full, &env.path(&format!("get{i}.crl")), None);
            assert_eq!(code, "200", "{h}");
            for needed in [
                "etag: ",
                "last-modified: ",
                "expires: ",
                "content-type: application/pkix-crl",
            ] {
                assert!(h.contains(needed), "{needed}: {h}");
            }
            etag = header_value(&h, "etag");
        }
        let loads = |kind: &str| -> u64 {
            let m = String::from_utf8(curl(&["-s", &format!("{}/metrics", r.url)])).unwrap();
            m.lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "gpki_ocsp_crl_loads_total{{ca=\"mois\",kind=\"{kind}\"}}"
                    ))
                })
                .and_then(|l| l.rsplit(' ').next())
                .map(|n| n.parse().unwrap())
                .unwrap_or(0)
        };
        assert_eq!(loads("full"), 1, "20 downloads, one read of the CRL");
        // Past the one-second recheck, the store is asked again, the number is the
        // same, and the CRL is not read again.
        std::thread::sleep(Duration::from_millis(1300));
        let (code, _) = get_crl(&full, &env.path("later.crl"), None);
        assert_eq!(code, "200");
        assert_eq!(loads("full"), 1, "an unchanged CRL number re-reads nothing");
        // The same CRL again: 304 without a body.
        let (code, _) = get_crl(&full, &env.path("cond.crl"), Some(&etag));
        assert_eq!(code, "304");
        env.openssl_ok(&[
            "crl", "-in", "get0.crl", "-inform", "DER", "-noout", "-verify", "-CAfile", "mois.pem",
        ]);

        // A revocation and a delta CRL, served at the delta URL.
        env.ok(&[
            "cert",
            "revoke",
            "--ca",
            "mois",
            "--serial",
            &serial_b,
            "--reason",
            "keyCompromise",
        ]);
        env.ok(&[
            "crl",
            "generate",
            "--ca",
            "mois",
            "--delta",
            "--out",
            "delta.crl",
        ]);
        std::thread::sleep(Duration::from_millis(1100));
        let (code, h) = get_crl(
            &format!("{}/crl/mois.delta.crl", r.url),
            &env.path("d.crl"),
            None,
        );
        assert_eq!(code, "200", "{h}");
        let text = env.openssl_ok(&["crl", "-in", "d.crl", "-inform", "DER", "-noout", "-text"]);
        assert!(
            text.contains("Delta CRL Indicator") && text.contains(&serial_b.to_uppercase()),
            "{text}"
        );
        // The next full CRL names where its deltas are; served in place of the old.
        env.ok(&["crl", "generate", "--ca", "mois", "--out", "full2.crl"]);
        std::thread::sleep(Duration::from_millis(1100));
        let (code, h) = get_crl(&full, &env.path("new.crl"), Some(&etag));
        assert_eq!(code, "200", "{h}");
        assert_ne!(header_value(&h, "etag"), etag);
        let text = env.openssl_ok(&[
            "crl", "-in", "new.crl", "-inform", "DER", "-noout", "-text", "-verify", "-CAfile",
            "mois.pem",
        ]);
        assert!(
            text.contains("Freshest CRL") && text.contains("/crl/mois.delta.crl"),
            "{text}"
        );
        assert_eq!(loads("full"), 2);
        for f in ["new.crl", "d.crl"] {
            let findings = pkilint("lint_crl", &["-t", "CRL", "-p", "PKIX"], &env.path(f));
            assert!(findings.is_empty(), "{f}:\n{findings}");
        }
    }
);
