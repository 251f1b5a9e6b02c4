//! The store as the registration authority sees it: [`RequestBook`], the RA's
//! request book. Requests as submitted, identity verifications and every move
//! of a request's status; the RA's record and its operators; the certificates a
//! request made (and their pairs) and the credential offers and mobile IDs the
//! RA answers for. Nothing of the CA's issuance log (recording or signing a
//! certificate, revoking one: the RA asks the CA service), of the key recovery
//! authority's, and no RA is created or changed (the administrator's).

use gpki_pki::Result;

use crate::{
    AuditEvent, AuthorityRecord, CertificateRecord, CredentialRecord, IdentityRecord, NewOffer,
    NewRequest, OfferRecord, OperatorRecord, RaRecord, RaRequest, Store, Transition,
};

/// The RA's handle on the store, which the RA service holds. It can
/// - read RAs (by id, by name, all), enrol an operator and set an operator's
///   status, read operators (by id, by certificate, of an RA);
/// - submit a request (with its identity verification), add an identity
///   verification, read requests (by id, by idempotency key, of an RA) and move
///   a request from one status to another;
/// - read CAs (by id, by name, a chain), certificates (by row, serial, request
///   key, the one a client presents in force) and the other of a km pair;
/// - make, move and read credential offers, read a mobile ID and revoke
///   mobile IDs (one, or an official's on a holder's report);
/// - hand the shared service scaffolding its store ([`RequestBook::scaffolding`]).
///
/// ```compile_fail
/// async fn issue(book: &gpki_store::RequestBook, c: &gpki_store::NewCertificate) {
///     // Recording a certificate is the CA's: this does not build.
///     let _ = book.record_tbs(c).await;
/// }
/// ```
#[derive(Clone)]
pub struct RequestBook {
    store: Store,
}

impl RequestBook {
    /// The RA's view of `store`.
    pub fn new(store: Store) -> RequestBook {
        RequestBook { store }
    }

    /// The whole store, for the shared service scaffolding only
    /// (`gpki_service::mtls`: the caller's certificate in force, health, refusals;
    /// `credential_api::known_official`), whose functions take a `Store`. The
    /// RA's own code goes through the methods of the book.
    pub fn scaffolding(&self) -> &Store {
        &self.store
    }

    /// [`Store::add_operator`].
    pub async fn add_operator(
        &self,
        ra_id: i64,
        name: &str,
        cert_id: i64,
        admin: bool,
        audit: &AuditEvent,
    ) -> Result<OperatorRecord> {
        self.store
            .add_operator(ra_id, name, cert_id, admin, audit)
            .await
    }

    /// [`Store::authority_by_name`].
    pub async fn authority_by_name(&self, name: &str) -> Result<AuthorityRecord> {
        self.store.authority_by_name(name).await
    }

    /// [`Store::authority_chain`].
    pub async fn authority_chain(&self, id: i64) -> Result<Vec<Vec<u8>>> {
        self.store.authority_chain(id).await
    }

    /// [`Store::authority`].
    pub async fn authority(&self, id: i64) -> Result<AuthorityRecord> {
        self.store.authority(id).await
    }

    /// [`Store::certificate_by_id`].
    pub async fn certificate_by_id(&self, id: i64) -> Result<CertificateRecord> {
        self.store.certificate_by_id(id).await
    }

    /// [`Store::certificate_by_request_key`].
    pub async fn certificate_by_request_key(
        &self,
        issuer_id: i64,
        key: &str,
    ) -> Result<Option<CertificateRecord>> {
        self.store.certificate_by_request_key(issuer_id, key).await
    }

    /// [`Store::certificate_in_force`].
    pub async fn certificate_in_force(
        &self,
        der: &[u8],
        now: i64,
    ) -> Result<(CertificateRecord, AuthorityRecord)> {
        self.store.certificate_in_force(der, now).await
    }

    /// [`Store::certificate`].
    pub async fn certificate(
        &self,
        issuer_id: i64,
        serial: &str,
    ) -> Result<Option<CertificateRecord>> {
        self.store.certificate(issuer_id, serial).await
    }

    /// [`Store::create_offer`].
    pub async fn create_offer(
        &self,
        new: &NewOffer,
        audit: &AuditEvent,
    ) -> Result<(OfferRecord, bool)> {
        self.store.create_offer(new, audit).await
    }

    /// [`Store::credential`].
    pub async fn credential(&self, id: i64) -> Result<CredentialRecord> {
        self.store.credential(id).await
    }

    /// [`Store::move_offer`].
    pub async fn move_offer(
        &self,
        id: i64,
        from: &str,
        to: &str,
        holder_jkt: Option<&str>,
        credential_id: Option<i64>,
        audit: &AuditEvent,
    ) -> Result<OfferRecord> {
        self.store
            .move_offer(id, from, to, holder_jkt, credential_id, audit)
            .await
    }

    /// [`Store::offer_of_credential`].
    pub async fn offer_of_credential(&self, credential_id: i64) -> Result<Option<OfferRecord>> {
        self.store.offer_of_credential(credential_id).await
    }

    /// [`Store::offer`].
    pub async fn offer(&self, id: i64) -> Result<OfferRecord> {
        self.store.offer(id).await
    }

    /// [`Store::operator_by_cert`].
    pub async fn operator_by_cert(&self, cert_id: i64) -> Result<Option<OperatorRecord>> {
        self.store.operator_by_cert(cert_id).await
    }

    /// [`Store::operator`].
    pub async fn operator(&self, id: i64) -> Result<OperatorRecord> {
        self.store.operator(id).await
    }

    /// [`Store::operators`].
    pub async fn operators(&self, ra_id: i64) -> Result<Vec<OperatorRecord>> {
        self.store.operators(ra_id).await
    }

    /// [`Store::pair_of`].
    pub async fn pair_of(&self, cert_id: i64) -> Result<Option<i64>> {
        self.store.pair_of(cert_id).await
    }

    /// [`Store::ra`].
    pub async fn ra(&self, id: i64) -> Result<RaRecord> {
        self.store.ra(id).await
    }

    /// [`Store::ras`].
    pub async fn ras(&self) -> Result<Vec<RaRecord>> {
        self.store.ras().await
    }

    /// [`Store::request_by_key`].
    pub async fn request_by_key(&self, ra_id: i64, key: &str) -> Result<Option<RaRequest>> {
        self.store.request_by_key(ra_id, key).await
    }

    /// [`Store::request`].
    pub async fn request(&self, id: i64) -> Result<RaRequest> {
        self.store.request(id).await
    }

    /// [`Store::requests`].
    pub async fn requests(
        &self,
        ra_id: i64,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RaRequest>> {
        self.store.requests(ra_id, status, limit).await
    }

    /// [`Store::revoke_credential`].
    pub async fn revoke_credential(
        &self,
        id: i64,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<CredentialRecord> {
        self.store.revoke_credential(id, reason, audit).await
    }

    /// [`Store::revoke_official_credentials`].
    pub async fn revoke_official_credentials(
        &self,
        employee_number: &str,
        issued_before: i64,
        reason: &str,
        actor: &str,
        detail: serde_json::Value,
    ) -> Result<Vec<CredentialRecord>> {
        self.store
            .revoke_official_credentials(employee_number, issued_before, reason, actor, detail)
            .await
    }

    /// [`Store::set_operator_status`].
    pub async fn set_operator_status(
        &self,
        id: i64,
        status: &str,
        audit: &AuditEvent,
    ) -> Result<OperatorRecord> {
        self.store.set_operator_status(id, status, audit).await
    }

    /// [`Store::submit_request`].
    pub async fn submit_request(
        &self,
        new: &NewRequest,
        identity: Option<&IdentityRecord>,
        audit: &AuditEvent,
    ) -> Result<(RaRequest, bool)> {
        self.store.submit_request(new, identity, audit).await
    }

    /// [`Store::transition`].
    pub async fn transition(
        &self,
        r: &RaRequest,
        t: &Transition<'_>,
        audit: &AuditEvent,
    ) -> Result<RaRequest> {
        self.store.transition(r, t, audit).await
    }

    /// [`Store::verify_identity`].
    pub async fn verify_identity(
        &self,
        request_id: i64,
        identity: &IdentityRecord,
        audit: &AuditEvent,
    ) -> Result<RaRequest> {
        self.store
            .verify_identity(request_id, identity, audit)
            .await
    }
}
