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

    /// [`Store::abandon`].
    pub async fn abandon(&self, id: i64, audit: &AuditEvent) -> Result<bool> {
        self.store.abandon(id, audit).await
    }

    /// [`Store::activate_authority`].
    pub async fn activate_authority(
        &self,
        id: i64,
        key_id: &[u8],
        spki_sha1: &[u8],
        name_sha1: &[u8],
        cert_der: &[u8],
        audit: &AuditEvent,
    ) -> Result<()> {
        self.store
            .activate_authority(id, key_id, spki_sha1, name_sha1, cert_der, audit)
            .await
    }

    /// [`Store::allocate_crl`].
    pub async fn allocate_crl(&self, issuer_id: i64) -> Result<CrlAllocation> {
        self.store.allocate_crl(issuer_id).await
    }

    /// [`Store::archive_key`].
    pub async fn archive_key(&self, new: &NewArchive, audit: &AuditEvent) -> Result<ArchiveRecord> {
        self.store.archive_key(new, audit).await
    }

    /// [`Store::audit`].
    pub async fn audit(&self, event: &AuditEvent) -> Result<()> {
        self.store.audit(event).await
    }

    /// [`Store::audit_head`].
    pub async fn audit_head(&self) -> Result<(i64, Vec<u8>)> {
        self.store.audit_head().await
    }

    /// [`Store::authority`].
    pub async fn authority(&self, id: i64) -> Result<AuthorityRecord> {
        self.store.authority(id).await
    }

    /// [`Store::authority_by_name`].
    pub async fn authority_by_name(&self, name: &str) -> Result<AuthorityRecord> {
        self.store.authority_by_name(name).await
    }

    /// [`Store::authority_chain`].
    pub async fn authority_chain(&self, id: i64) -> Result<Vec<Vec<u8>>> {
        self.store.authority_chain(id).await
    }

    /// [`Store::certificate`].
    pub async fn certificate(
        &self,
        issuer_id: i64,
        serial: &str,
    ) -> Result<Option<CertificateRecord>> {
        self.store.certificate(issuer_id, serial).await
    }

    /// [`Store::certificate_by_id`].
    pub async fn certificate_by_id(&self, id: i64) -> Result<CertificateRecord> {
        self.store.certificate_by_id(id).await
    }

    /// [`Store::compromised_keys`].
    pub async fn compromised_keys(&self, spki_sha256: &[String]) -> Result<Vec<(String, Error)>> {
        self.store.compromised_keys(spki_sha256).await
    }

    /// [`Store::create_authority`].
    pub async fn create_authority(
        &self,
        new: &NewAuthority,
        audit: &AuditEvent,
    ) -> Result<AuthorityRecord> {
        self.store.create_authority(new, audit).await
    }

    /// [`Store::crl_entries`].
    pub async fn crl_entries(
        &self,
        issuer_id: i64,
        watermark: i64,
        previous: Option<&CrlRecord>,
    ) -> Result<CrlEntries> {
        self.store.crl_entries(issuer_id, watermark, previous).await
    }

    /// [`Store::crl_numbers`].
    pub async fn crl_numbers(&self, issuer_id: i64) -> Result<(Option<i64>, Option<i64>)> {
        self.store.crl_numbers(issuer_id).await
    }

    /// [`Store::delta_entries`].
    pub async fn delta_entries(
        &self,
        issuer_id: i64,
        base_watermark: i64,
        watermark: i64,
    ) -> Result<CrlEntries> {
        self.store
            .delta_entries(issuer_id, base_watermark, watermark)
            .await
    }

    /// [`Store::display_url`].
    pub fn display_url(&self) -> String {
        self.store.display_url()
    }

    /// [`Store::find_authority`].
    pub async fn find_authority(&self, name: &str) -> Result<Option<AuthorityRecord>> {
        self.store.find_authority(name).await
    }

    /// [`Store::last_audit_detail`].
    pub async fn last_audit_detail(&self, action: &str) -> Result<Option<String>> {
        self.store.last_audit_detail(action).await
    }

    /// [`Store::mark_issued`].
    pub async fn mark_issued(
        &self,
        id: i64,
        der: &[u8],
        audit: &AuditEvent,
    ) -> Result<CertificateRecord> {
        self.store.mark_issued(id, der, audit).await
    }

    /// [`Store::mark_issued_many`].
    pub async fn mark_issued_many(&self, issued: &[(i64, Vec<u8>, AuditEvent)]) -> Result<()> {
        self.store.mark_issued_many(issued).await
    }

    /// [`Store::pair_of`].
    pub async fn pair_of(&self, cert_id: i64) -> Result<Option<i64>> {
        self.store.pair_of(cert_id).await
    }

    /// [`Store::record_crl`].
    pub async fn record_crl(&self, crl: &NewCrl, audit: &AuditEvent) -> Result<CrlRecord> {
        self.store.record_crl(crl, audit).await
    }

    /// [`Store::record_tbs`].
    pub async fn record_tbs(&self, cert: &NewCertificate) -> Result<i64> {
        self.store.record_tbs(cert).await
    }

    /// [`Store::record_tbs_many`].
    pub async fn record_tbs_many(&self, certs: &[NewCertificate]) -> Result<Vec<i64>> {
        self.store.record_tbs_many(certs).await
    }

    /// [`Store::release_hold`].
    pub async fn release_hold(
        &self,
        issuer_id: i64,
        serial: &str,
        audit: &AuditEvent,
    ) -> Result<CertificateRecord> {
        self.store.release_hold(issuer_id, serial, audit).await
    }

    /// [`Store::request_keys`].
    pub async fn request_keys(
        &self,
        issuer_id: i64,
        prefix: &str,
    ) -> Result<Vec<(String, CertStatus, i64)>> {
        self.store.request_keys(issuer_id, prefix).await
    }

    /// [`Store::revoke`].
    pub async fn revoke(
        &self,
        issuer_id: i64,
        serial: &str,
        reason: i64,
        revoked_at: i64,
        invalidity_date: Option<i64>,
        audit: &AuditEvent,
    ) -> Result<CertificateRecord> {
        self.store
            .revoke(
                issuer_id,
                serial,
                reason,
                revoked_at,
                invalidity_date,
                audit,
            )
            .await
    }

    /// [`Store::kra_by_name`].
    pub async fn kra_by_name(&self, name: &str) -> Result<KraRecord> {
        self.store.kra_by_name(name).await
    }

    /// [`Store::signer_in_force`].
    pub async fn signer_in_force(&self, der: &[u8], what: &str) -> Result<CertificateRecord> {
        self.store.signer_in_force(der, what).await
    }
}
