//! The store as the status services see it: [`StatusReader`], which only reads.
//! The OCSP responder (with its CRL, caIssuers and status-list routes) holds one
//! instead of a [`Store`], so "the responder never writes" is kept by the
//! compiler, and by the database: its sessions are read-only.

use std::time::Duration;

use gpki_pki::Result;

use crate::{
    AuthorityRecord, CertFilter, CertificateRecord, CrlRecord, Standing, StatusListRecord,
    StatusListener, StatusMark, StatusRow, Store,
};

/// Read access to certificate status, CRLs, CA records and credential status
/// lists; nothing that writes.
///
/// ```compile_fail
/// async fn revoke(reader: &gpki_store::StatusReader) {
///     // A reader has no revoke (nor any other write): this does not build.
///     let _ = reader.revoke(1, "0a", 1, 0, None, todo!()).await;
/// }
/// ```
#[derive(Clone)]
pub struct StatusReader {
    store: Store,
}

impl StatusReader {
    /// Connects read-only ([`Store::connect_read_only`]).
    pub async fn connect(url: &str, acquire_timeout: Duration) -> Result<StatusReader> {
        Ok(StatusReader {
            store: Store::connect_read_only(url, acquire_timeout).await?,
        })
    }

    /// The store's URL without its password, for messages.
    pub fn display_url(&self) -> String {
        self.store.display_url()
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> Result<()> {
        crate::ping(&self.store).await
    }

    pub async fn authority_by_name(&self, name: &str) -> Result<AuthorityRecord> {
        self.store.authority_by_name(name).await
    }

    pub async fn find_authority(&self, name: &str) -> Result<Option<AuthorityRecord>> {
        self.store.find_authority(name).await
    }

    /// The certificates of CA `id` and those above it, the CA's first.
    pub async fn authority_chain(&self, id: i64) -> Result<Vec<Vec<u8>>> {
        self.store.authority_chain(id).await
    }

    /// Whether CA `record` may sign at `now`, read from its chain's rows.
    pub async fn standing(&self, record: &AuthorityRecord, now: i64) -> Result<Standing> {
        crate::standing::standing(&self.store, record, now).await
    }

    pub async fn list_certificates(&self, filter: &CertFilter) -> Result<Vec<CertificateRecord>> {
        self.store.list_certificates(filter).await
    }

    pub async fn status_page(
        &self,
        issuer_id: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<StatusRow>> {
        self.store.status_page(issuer_id, after_id, limit).await
    }

    pub async fn status_changes(&self, issuer_id: i64, since: i64) -> Result<Vec<StatusRow>> {
        self.store.status_changes(issuer_id, since).await
    }

    pub async fn status_of(&self, issuer_id: i64, serial: &str) -> Result<Option<StatusRow>> {
        self.store.status_of(issuer_id, serial).await
    }

    pub async fn status_mark(&self, issuer_id: i64) -> Result<StatusMark> {
        self.store.status_mark(issuer_id).await
    }

    /// The change notifications, where the backend sends them (PostgreSQL).
    pub async fn status_listener(&self) -> Result<Option<StatusListener>> {
        self.store.status_listener().await
    }

    pub async fn crl_numbers(&self, issuer_id: i64) -> Result<(Option<i64>, Option<i64>)> {
        self.store.crl_numbers(issuer_id).await
    }

    pub async fn crl_by_number(
        &self,
        issuer_id: i64,
        crl_number: i64,
    ) -> Result<Option<CrlRecord>> {
        self.store.crl_by_number(issuer_id, crl_number).await
    }

    pub async fn status_list_by_name(&self, name: &str) -> Result<StatusListRecord> {
        self.store.status_list_by_name(name).await
    }

    pub async fn status_list_revoked(&self, list_id: i64) -> Result<(i64, Vec<i64>)> {
        self.store.status_list_revoked(list_id).await
    }

    /// The row of certificate `der`, issued by a CA of the store and in force at
    /// `now`, with its CA; refused otherwise.
    pub async fn certificate_in_force(
        &self,
        der: &[u8],
        now: i64,
    ) -> Result<(CertificateRecord, AuthorityRecord)> {
        self.store.certificate_in_force(der, now).await
    }

    /// [`StatusReader::certificate_in_force`] now, for a signer named `what`.
    pub async fn signer_in_force(&self, der: &[u8], what: &str) -> Result<CertificateRecord> {
        self.store.signer_in_force(der, what).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ca, drop_pg, event, pg_store, store};
    use crate::{NewAuthority, NewCertificate};

    /// A read-only connection reads what the writers wrote and the database
    /// refuses it every write: a direct one, one through the group writer, and a
    /// statement smuggled past the API.
    async fn refuses_writes(url: &str, writer: &Store) {
        let ca = ca(writer).await;
        let reader = StatusReader::connect(url, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(reader.authority_by_name("ca").await.unwrap().id, ca.id);
        assert!(reader.status_page(ca.id, 0, 10).await.unwrap().is_empty());
        reader.ping().await.unwrap();
        let raw = Store::connect_read_only(url, Duration::from_secs(5))
            .await
            .unwrap();
        let e = raw
            .create_authority(
                &NewAuthority {
                    name: "other".into(),
                    parent_id: None,
                    subject: "CN=other".into(),
                    key_type: "p256".into(),
                    signature_algorithm: "ecdsa-with-SHA256".into(),
                    key_path: "other.key.pem".into(),
                    offline: false,
                    crl_url: None,
                    ocsp_url: None,
                    ca_issuers_url: None,
                },
                &event(),
            )
            .await
            .unwrap_err();
        assert!(e.detail.contains("read"), "{e}");
        let e = raw
            .record_tbs(&NewCertificate {
                issuer_id: ca.id,
                serial: "0a".into(),
                subject: "CN=x".into(),
                profile: "server".into(),
                not_before: 0,
                not_after: 1,
                spki_sha256: "ab".repeat(32),
                tbs: vec![0x30, 0x00],
                renewed_from: None,
                request_key: None,
            })
            .await
            .unwrap_err();
        assert!(e.detail.contains("read"), "{e}");
        let e = sqlx::query("UPDATE authorities SET crl_url = 'x'")
            .execute(raw.pool())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("read"), "{e}");
        assert_eq!(writer.authority(ca.id).await.unwrap().crl_url, None);
        raw.close().await;
    }

    #[tokio::test]
    async fn a_status_reader_cannot_write_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let writer = store(&dir).await;
        let url = format!("sqlite://{}/gpki.db", dir.path().display());
        refuses_writes(&url, &writer).await;
        // A read-only URL may not choose its own mode.
        let e = Store::connect_read_only(&format!("{url}?mode=rwc"), Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(e.detail.contains("mode"), "{e}");
    }

    #[tokio::test]
    async fn a_status_reader_cannot_write_on_postgres() {
        let Some((writer, url)) = pg_store().await else {
            return;
        };
        refuses_writes(&url, &writer).await;
        writer.close().await;
        drop_pg(&url).await;
    }
}
