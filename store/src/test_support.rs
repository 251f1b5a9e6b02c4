//! Fixtures of the store's unit tests.

use crate::{AuditEvent, AuthorityRecord, NewAuthority, Store};

pub(crate) fn event() -> AuditEvent {
    AuditEvent::new("test", "test", "test", serde_json::json!({}))
}

/// A SQLite store in `dir`.
pub(crate) async fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(&format!("sqlite://{}/gpki.db", dir.path().display()))
        .await
        .unwrap()
}

/// A pending root CA named `ca`, with no certificate yet.
pub(crate) async fn ca(store: &Store) -> AuthorityRecord {
    store
        .create_authority(
            &NewAuthority {
                name: "ca".into(),
                parent_id: None,
                subject: "CN=ca".into(),
                key_type: "p256".into(),
                signature_algorithm: "ecdsa-with-SHA256".into(),
                key_path: "ca.key.pem".into(),
                crl_url: None,
                ocsp_url: None,
                ca_issuers_url: None,
            },
            &event(),
        )
        .await
        .unwrap()
}
