//! The store as the key recovery authority sees it: [`KeyArchive`], the key
//! archive and its recovery requests, the KRA and its officers to check
//! approvals against, and the certificates a recovery reads. It archives no key
//! (that is the CA's, at issuance), registers no KRA or officer (the
//! administrator's), and changes no certificate.

use gpki_pki::Result;

use crate::{
    ArchiveRecord, AuditEvent, AuthorityRecord, CertificateRecord, KraRecord, NewApproval,
    OfficerRecord, RecoveryRecord, Store,
};

/// The KRA's handle on the store: what `gpki km request` and `gpki km recover`
/// use. It can
/// - read a CA's chain, a certificate by its row, and the certificate in force
///   that signed an approval;
/// - read a KRA by id and its officers;
/// - read an archived key (by id or by its certificate);
/// - open a recovery request, read the open one, and release it with the
///   approvals it accepted;
/// - audit a refused recovery.
///
/// ```compile_fail
/// async fn archive(kra: &gpki_store::KeyArchive, new: &gpki_store::NewArchive) {
///     // Archiving a key is the CA's, at issuance: this does not build.
///     let _ = kra.archive_key(new, todo!()).await;
/// }
/// ```
#[derive(Clone)]
pub struct KeyArchive {
    store: Store,
}

impl KeyArchive {
    /// The KRA's view of `store`.
    pub fn new(store: Store) -> KeyArchive {
        KeyArchive { store }
    }

    crate::handle::delegate! {
        /// The certificates of CA `id` and those above it, the CA's first.
        async fn authority_chain(&self, id: i64) -> Result<Vec<Vec<u8>>>;
        async fn certificate_by_id(&self, id: i64) -> Result<CertificateRecord>;
        /// The row of certificate `der` and its CA, when it is in force at `now`.
        async fn certificate_in_force(&self, der: &[u8], now: i64) -> Result<(CertificateRecord, AuthorityRecord)>;
        async fn kra(&self, id: i64) -> Result<KraRecord>;
        async fn officers(&self, kra_id: i64) -> Result<Vec<OfficerRecord>>;
        async fn archive(&self, id: i64) -> Result<ArchiveRecord>;
        /// The archived key of certificate `cert_id`, if it has one.
        async fn archive_of(&self, cert_id: i64) -> Result<Option<ArchiveRecord>>;
        /// Opens a recovery request for archived key `archive_id`, audited.
        async fn request_recovery(&self, archive_id: i64, reason: &str, requested_by: &str, nonce: &str, audit: &AuditEvent) -> Result<RecoveryRecord>;
        /// The open recovery request of archived key `archive_id`, if any.
        async fn open_recovery(&self, archive_id: i64) -> Result<Option<RecoveryRecord>>;
        /// Releases request `id` with the approvals accepted, in one transaction.
        async fn release_recovery(&self, id: i64, approvals: &[(NewApproval, AuditEvent)], released_by: &str, release: &AuditEvent) -> Result<RecoveryRecord>;
        /// Appends `event` to the audit log (a refused recovery).
        async fn audit(&self, event: &AuditEvent) -> Result<()>;
    }
}
