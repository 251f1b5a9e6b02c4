use super::*;
use crate::test_support::{ca, store};

const MOIS: &str = "OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR";
const MOE: &str = "OU=Ministry of Education, O=Government of Korea, C=KR";

/// An employee number is bound by the first official-sign certificate that
/// names it: another name or institution is refused and writes nothing; the
/// same official again (renewal) and other profiles are not held to it.
async fn exercise(store: &Store) {
    let ca = ca(store).await;
    let mut n = 0;
    let mut record = |subject: String, profile: &str| {
        n += 1;
        let c = NewCertificate {
            issuer_id: ca.id,
            serial: format!("{n:02x}"),
            subject,
            profile: profile.into(),
            not_before: 0,
            not_after: 4_000_000_000,
            spki_sha256: format!("{n:064x}"),
            tbs: vec![0x30, 0x00],
            renewed_from: None,
            request_key: None,
        };
        let store = store.clone();
        async move { store.record_tbs(&c).await }
    };
    let hong = format!("CN=Hong Gildong(001234567), OU=people, {MOIS}");
    record(hong.clone(), OFFICIAL_PROFILE).await.unwrap();
    record(hong.clone(), OFFICIAL_PROFILE).await.unwrap();
    let before = store.counts().await.unwrap();
    for (subject, who) in [
        (
            format!("CN=Mallory(001234567), OU=people, {MOIS}"),
            "Mallory of Ministry of the Interior",
        ),
        (
            format!("CN=Hong Gildong(001234567), OU=people, {MOE}"),
            "Hong Gildong of Ministry of Education",
        ),
    ] {
        let e = record(subject, OFFICIAL_PROFILE).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::PolicyViolation, "{e}");
        assert!(
            e.detail.contains("employee number 001234567 belongs to Hong Gildong of Ministry of the Interior and Safety")
                && e.detail.contains(who),
            "{e}"
        );
    }
    assert_eq!(
        store.counts().await.unwrap(),
        before,
        "a refusal writes nothing"
    );
    // Another number, and a km certificate, are their own.
    record(
        format!("CN=Mallory(007654321), OU=people, {MOIS}"),
        OFFICIAL_PROFILE,
    )
    .await
    .unwrap();
    record(
        format!("CN=Mallory(001234567), OU=people, {MOIS}"),
        "official-km",
    )
    .await
    .unwrap();
}

/// An abandoned row is a status change a running responder follows, as a
/// revocation is: the issuer's revocation sequence moves and the row is among
/// the changes since the mark the responder held (issue 28, point 8b).
async fn abandon_is_a_status_change(store: &Store) {
    let ca = ca(store).await;
    let id = store
        .record_tbs(&NewCertificate {
            issuer_id: ca.id,
            serial: "0a".into(),
            subject: "CN=x".into(),
            profile: "server".into(),
            not_before: 0,
            not_after: 4_000_000_000,
            spki_sha256: "ab".repeat(32),
            tbs: vec![0x30, 0x00],
            renewed_from: None,
            request_key: Some("r-1".into()),
        })
        .await
        .unwrap();
    let seen = store.status_mark(ca.id).await.unwrap();
    let event = AuditEvent::new("t", "cert.abandon", "cert:ca/0a", serde_json::json!({}));
    assert!(store.abandon(id, &event).await.unwrap());
    let now = store.status_mark(ca.id).await.unwrap();
    assert!(now.revocation_seq > seen.revocation_seq, "{seen:?} {now:?}");
    let changes = store
        .status_changes(ca.id, seen.revocation_seq)
        .await
        .unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0].id, changes[0].status.as_str()),
        (id, "abandoned")
    );
    // Once only: an abandoned row is not abandoned again, nothing moves.
    assert!(!store.abandon(id, &event).await.unwrap());
    assert_eq!(store.status_mark(ca.id).await.unwrap(), now);
}

/// The store's refusals carry the reason a caller acts on, not only text: a
/// second revocation, a second hold, an abandoned row, a serial recorded twice.
async fn refusals_carry_their_reason(store: &Store) {
    let ca = ca(store).await;
    let new = |serial: &str, key: u8| NewCertificate {
        issuer_id: ca.id,
        serial: serial.into(),
        subject: "CN=x".into(),
        profile: "server".into(),
        not_before: 0,
        not_after: 4_000_000_000,
        spki_sha256: format!("{key:064x}"),
        tbs: vec![0x30, 0x00],
        renewed_from: None,
        request_key: None,
    };
    let event = AuditEvent::new("t", "cert", "cert:ca/x", serde_json::json!({}));
    let id = store.record_tbs(&new("0a", 1)).await.unwrap();
    store.mark_issued(id, &[0x30, 0x00], &event).await.unwrap();
    let e = store.record_tbs(&new("0a", 2)).await.unwrap_err();
    assert_eq!(
        e.reason(),
        Some(&Reason::AlreadyRecorded {
            serial: "0a".into()
        }),
        "{e}"
    );
    let revoke = |serial: &'static str, reason: i64| {
        let (store, event) = (store.clone(), event.clone());
        async move { store.revoke(ca.id, serial, reason, 1, None, &event).await }
    };
    revoke("0a", 6).await.unwrap();
    let e = revoke("0a", 6).await.unwrap_err();
    assert_eq!(
        e.reason(),
        Some(&Reason::AlreadyOnHold {
            serial: "0a".into()
        }),
        "{e}"
    );
    revoke("0a", 1).await.unwrap();
    let e = revoke("0a", 4).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(
        e.reason(),
        Some(&Reason::AlreadyRevoked {
            serial: "0a".into()
        }),
        "{e}"
    );
    let id = store.record_tbs(&new("0b", 3)).await.unwrap();
    assert!(store.abandon(id, &event).await.unwrap());
    let e = revoke("0b", 1).await.unwrap_err();
    assert_eq!(
        e.reason(),
        Some(&Reason::Abandoned {
            serial: "0b".into()
        }),
        "{e}"
    );
}

crate::test_support::on_both_backends!(
    refusals_carry_their_reason_on_sqlite,
    refusals_carry_their_reason_on_postgres,
    refusals_carry_their_reason
);

crate::test_support::on_both_backends!(
    abandon_is_a_status_change_on_sqlite,
    abandon_is_a_status_change_on_postgres,
    abandon_is_a_status_change
);

/// A store from before migration 0012: its official-sign certificates bind
/// their numbers at the next open, the earliest official first, so a later
/// claim for another official is refused from then on.
#[tokio::test]
async fn numbers_recorded_before_the_binding_are_bound_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let ca = ca(&store).await;
    let record = |n: u8, subject: &str| NewCertificate {
        issuer_id: ca.id,
        serial: format!("{n:02x}"),
        subject: subject.into(),
        profile: OFFICIAL_PROFILE.into(),
        not_before: 0,
        not_after: 4_000_000_000,
        spki_sha256: format!("{n:064x}"),
        tbs: vec![0x30, 0x00],
        renewed_from: None,
        request_key: None,
    };
    let hong = format!("CN=Hong Gildong(001234567), OU=people, {MOIS}");
    store.record_tbs(&record(1, &hong)).await.unwrap();
    // As an upgraded store has it: certificates, no bindings, not backfilled.
    sqlx::query("DELETE FROM official_numbers")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE official_numbers_backfill SET next_id = 0")
        .execute(store.pool())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let done: i64 = sqlx::query_scalar("SELECT next_id FROM official_numbers_backfill")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(done, -1, "marked done: the next open reads one row");
    let e = store
        .record_tbs(&record(
            2,
            &format!("CN=Mallory(001234567), OU=people, {MOIS}"),
        ))
        .await
        .unwrap_err();
    assert!(e.detail.contains("belongs to Hong Gildong"), "{e}");
    // A pending row abandoned keeps its number bound (its request is asked
    // again, for the same official): no one else takes it meanwhile.
    let kim = format!("CN=Kim Cheolsu(001111111), OU=people, {MOIS}");
    let id = store.record_tbs(&record(3, &kim)).await.unwrap();
    let event = AuditEvent::new("t", "cert.abandon", "x", serde_json::json!({}));
    assert!(store.abandon(id, &event).await.unwrap());
    let e = store
        .record_tbs(&record(4, &format!("CN=Choi(001111111), OU=people, {MOE}")))
        .await
        .unwrap_err();
    assert!(e.detail.contains("belongs to Kim Cheolsu"), "{e}");
    store.record_tbs(&record(5, &kim)).await.unwrap();
}

crate::test_support::on_both_backends!(
    an_employee_number_belongs_to_one_official_on_sqlite,
    an_employee_number_belongs_to_one_official_on_postgres,
    exercise
);

/// A key revoked as compromised is refused for every later certificate with a
/// typed reason naming the key, which a caller (the RA, ACME's badPublicKey)
/// matches instead of reading the detail; a key revoked for another reason is not.
async fn compromised_keys_are_refused_by_reason(store: &Store) {
    let ca = ca(store).await;
    let cert = |serial: &str, spki: &str| NewCertificate {
        issuer_id: ca.id,
        serial: serial.into(),
        subject: "CN=www.example.go.kr, O=Government of Korea, C=KR".into(),
        profile: "server".into(),
        not_before: 0,
        not_after: 4_000_000_000,
        spki_sha256: spki.into(),
        tbs: vec![0x30, 0x00],
        renewed_from: None,
        request_key: None,
    };
    let event = AuditEvent::new("t", "cert.revoke", "x", serde_json::json!({}));
    let (bad, other) = (format!("{:064x}", 0xbad), format!("{:064x}", 0x0e));
    for (serial, spki, reason) in [("01", &bad, 1), ("02", &other, 4)] {
        let id = store.record_tbs(&cert(serial, spki)).await.unwrap();
        store.mark_issued(id, &[0x30, 0x00], &event).await.unwrap();
        store
            .revoke(ca.id, serial, reason, 0, None, &event)
            .await
            .unwrap();
    }
    let e = store.record_tbs(&cert("03", &bad)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PolicyViolation, "{e}");
    assert_eq!(
        e.reason(),
        Some(&Reason::KeyCompromised { spki_sha256: bad })
    );
    // Superseded (4) is not compromise: the key is certified again.
    store.record_tbs(&cert("04", &other)).await.unwrap();
}

crate::test_support::on_both_backends!(
    compromised_keys_are_refused_by_reason_on_sqlite,
    compromised_keys_are_refused_by_reason_on_postgres,
    compromised_keys_are_refused_by_reason
);
