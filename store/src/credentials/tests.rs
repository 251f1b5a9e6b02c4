use super::*;
use crate::test_support::{ca, event};
use crate::NewCertificate;

crate::test_support::on_both_backends!(
    ids_end_with_their_official_and_reports_reach_only_earlier_ids_on_sqlite,
    ids_end_with_their_official_and_reports_reach_only_earlier_ids_on_postgres,
    ids_end_with_their_official
);

/// An official's IDs end with their last official-sign certificate: the valid
/// one is revoked `certificate-revoked`, and one still being issued is
/// stopped (its issuance then fails); a holder's report reaches only IDs
/// issued before it was signed.
async fn ids_end_with_their_official(store: &Store) {
    let store = store.clone();
    let ca = ca(&store).await;
    let subject = "CN=Hong Gildong(001234567), OU=people, OU=MOIS, O=Gov, C=KR";
    let cert = store
        .record_tbs(&NewCertificate {
            issuer_id: ca.id,
            serial: "01".into(),
            subject: subject.into(),
            profile: crate::certificates::OFFICIAL_PROFILE.into(),
            not_before: 0,
            not_after: 4_000_000_000,
            spki_sha256: "01".repeat(32),
            tbs: vec![0x30, 0x00],
            renewed_from: None,
            request_key: None,
        })
        .await
        .unwrap();
    store
        .mark_issued(cert, &[0x30, 0x00], &event())
        .await
        .unwrap();
    let list = store
        .create_status_list("l", "https://x/l", 1, 1024, &event())
        .await
        .unwrap();
    let mut next = 0;
    let mut id = |store: &Store| {
        next += 1;
        let n = next;
        let store = store.clone();
        async move {
            store
                .allocate_credential(
                    &NewCredential {
                        list_id: list.id,
                        format: "mdoc".into(),
                        doc_type: "d".into(),
                        subject: "001234567".into(),
                        holder_jkt: format!("jkt-{n}"),
                        signer_serial: "s".into(),
                        valid_until: 4_000_000_000,
                    },
                    move |_| n,
                )
                .await
                .unwrap()
        }
    };
    // A report signed before an ID was issued does not reach it.
    let first = id(&store).await;
    store
        .mark_credential_issued(
            first.id,
            "d1",
            &IssuedWith {
                official_cert: Some(cert),
                ..Default::default()
            },
            &event(),
        )
        .await
        .unwrap();
    let e = store
        .revoke_official_credentials(
            "001234567",
            first.issued_at - 1,
            "lost-device",
            "h",
            serde_json::json!({}),
        )
        .await
        .unwrap_err();
    assert!(e.detail.contains("holds no valid mobile ID"), "{e}");
    let pending = id(&store).await;
    store
        .revoke(ca.id, "01", 3, gpki_pki::time::now(), None, &event())
        .await
        .unwrap();
    let first = store.credential(first.id).await.unwrap();
    assert_eq!(
        (first.status.as_str(), first.reason.as_deref()),
        ("revoked", Some("certificate-revoked"))
    );
    assert_eq!(
        store.credential(pending.id).await.unwrap().status,
        "revoked"
    );
    let e = store
        .mark_credential_issued(
            pending.id,
            "d2",
            &IssuedWith {
                official_cert: Some(cert),
                ..Default::default()
            },
            &event(),
        )
        .await
        .unwrap_err();
    assert!(e.detail.contains("not pending"), "{e}");
    // Allocated after the revocation committed: the official's certificate is
    // read where the ID would become valid, and it is not.
    let late = id(&store).await;
    let e = store
        .mark_credential_issued(
            late.id,
            "d3",
            &IssuedWith {
                official_cert: Some(cert),
                ..Default::default()
            },
            &event(),
        )
        .await
        .unwrap_err();
    assert!(e.detail.contains("no longer in force"), "{e}");
    assert_eq!(store.credential(late.id).await.unwrap().status, "pending");
}
