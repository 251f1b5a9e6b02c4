//! The store as the CA sees it: [`IssuanceLog`], the CA's issuance log. What the
//! CA records and reads as it makes, signs, revokes and lists certificates and
//! CRLs, and nothing of the registration authorities' (requests, operators), of
//! the key recovery authority's (recovery requests, releases) or of the
//! credentials' books.

use gpki_pki::{Error, Result};

use crate::{
    ArchiveRecord, AuditEvent, AuthorityRecord, CertStatus, CertificateRecord, CrlAllocation,
    CrlEntries, CrlRecord, KraRecord, NewArchive, NewAuthority, NewCertificate, NewCrl, Standing,
    Store,
};

/// The CA's handle on the store, which `gpki_ca::Ca` holds (and so the CA service).
/// It can
/// - create a CA record and activate it with its certificate; read CAs (by id,
///   by name, all of one chain) and whether a CA may sign ([`IssuanceLog::standing`]);
/// - record a certificate before it is signed (one or many), mark it issued,
///   abandon it, read it back (by row, by serial, by request key prefix), refuse
///   compromised keys, archive a km key with it and find the other of a pair;
/// - find a KRA and check a signing certificate is in force (the KRA's, before
///   a key is archived to it);
/// - revoke and release a hold; allocate, build and record CRLs;
/// - read the audit head and the last detail of an action, and append an audit
///   record (the CA's profile changes and checkpoints).
///
/// ```compile_fail
/// async fn decide(log: &gpki_store::IssuanceLog, r: &gpki_store::RaRequest) {
///     // Requests are the RA's book: this does not build.
///     let _ = log.transition(r, todo!(), todo!()).await;
/// }
/// ```
#[derive(Clone)]
pub struct IssuanceLog {
    store: Store,
}

impl IssuanceLog {
    /// The CA's view of `store`.
    pub fn new(store: Store) -> IssuanceLog {
        IssuanceLog { store }
    }

    /// Whether CA `record` may sign at `now`, read from its chain's rows.
    pub async fn standing(&self, record: &AuthorityRecord, now: i64) -> Result<Standing> {
        crate::standing::standing(&self.store, record, now).await
    }

    /// [`IssuanceLog::standing`] now, concurrent askers about one CA sharing a
    /// read ([`crate::standing::current`]).
    pub async fn current_standing(&self, record: &AuthorityRecord) -> Result<Standing> {
        crate::standing::current(&self.store, record).await
    }

    /// [`Store::display_url`].
    pub fn display_url(&self) -> String {
        self.store.display_url()
    }

    crate::handle::delegate! {
        /// [`Store::abandon`].
        async fn abandon(&self, id: i64, audit: &AuditEvent) -> Result<bool>;
        /// [`Store::activate_authority`].
        async fn activate_authority(&self, id: i64, key_id: &[u8], spki_sha1: &[u8], name_sha1: &[u8], cert_der: &[u8], audit: &AuditEvent) -> Result<()>;
        /// [`Store::allocate_crl`].
        async fn allocate_crl(&self, issuer_id: i64) -> Result<CrlAllocation>;
        /// [`Store::archive_key`].
        async fn archive_key(&self, new: &NewArchive, audit: &AuditEvent) -> Result<ArchiveRecord>;
        /// [`Store::audit`].
        async fn audit(&self, event: &AuditEvent) -> Result<()>;
        /// [`Store::audit_head`].
        async fn audit_head(&self) -> Result<(i64, Vec<u8>)>;
        /// [`Store::authority`].
        async fn authority(&self, id: i64) -> Result<AuthorityRecord>;
        /// [`Store::authority_by_name`].
        async fn authority_by_name(&self, name: &str) -> Result<AuthorityRecord>;
        /// [`Store::authority_chain`].
        async fn authority_chain(&self, id: i64) -> Result<Vec<Vec<u8>>>;
        /// [`Store::certificate`].
        async fn certificate(&self, issuer_id: i64, serial: &str) -> Result<Option<CertificateRecord>>;
        /// [`Store::certificate_by_id`].
        async fn certificate_by_id(&self, id: i64) -> Result<CertificateRecord>;
        /// [`Store::compromised_keys`].
        async fn compromised_keys(&self, spki_sha256: &[String]) -> Result<Vec<(String, Error)>>;
        /// [`Store::create_authority`].
        async fn create_authority(&self, new: &NewAuthority, audit: &AuditEvent) -> Result<AuthorityRecord>;
        /// [`Store::crl_entries`].
        async fn crl_entries(&self, issuer_id: i64, watermark: i64, previous: Option<&CrlRecord>) -> Result<CrlEntries>;
        /// [`Store::crl_numbers`].
        async fn crl_numbers(&self, issuer_id: i64) -> Result<(Option<i64>, Option<i64>)>;
        /// [`Store::delta_entries`].
        async fn delta_entries(&self, issuer_id: i64, base_watermark: i64, watermark: i64) -> Result<CrlEntries>;
        /// [`Store::find_authority`].
        async fn find_authority(&self, name: &str) -> Result<Option<AuthorityRecord>>;
        /// [`Store::last_audit_detail`].
        async fn last_audit_detail(&self, action: &str) -> Result<Option<String>>;
        /// [`Store::mark_issued`].
        async fn mark_issued(&self, id: i64, der: &[u8], audit: &AuditEvent) -> Result<CertificateRecord>;
        /// [`Store::mark_issued_many`].
        async fn mark_issued_many(&self, issued: &[(i64, Vec<u8>, AuditEvent)]) -> Result<()>;
        /// [`Store::pair_of`].
        async fn pair_of(&self, cert_id: i64) -> Result<Option<i64>>;
        /// [`Store::record_crl`].
        async fn record_crl(&self, crl: &NewCrl, audit: &AuditEvent) -> Result<CrlRecord>;
        /// [`Store::record_tbs`].
        async fn record_tbs(&self, cert: &NewCertificate) -> Result<i64>;
        /// [`Store::record_tbs_many`].
        async fn record_tbs_many(&self, certs: &[NewCertificate]) -> Result<Vec<i64>>;
        /// [`Store::release_hold`].
        async fn release_hold(&self, issuer_id: i64, serial: &str, audit: &AuditEvent) -> Result<CertificateRecord>;
        /// [`Store::request_keys`].
        async fn request_keys(&self, issuer_id: i64, prefix: &str) -> Result<Vec<(String, CertStatus, i64)>>;
        /// [`Store::revoke`].
        async fn revoke(&self, issuer_id: i64, serial: &str, reason: i64, revoked_at: i64, invalidity_date: Option<i64>, audit: &AuditEvent) -> Result<CertificateRecord>;
        /// [`Store::kra_by_name`].
        async fn kra_by_name(&self, name: &str) -> Result<KraRecord>;
        /// [`Store::signer_in_force`].
        async fn signer_in_force(&self, der: &[u8], what: &str) -> Result<CertificateRecord>;
    }
}
