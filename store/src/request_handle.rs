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
/// - read RAs (by id, all), enrol an operator and set an operator's
///   status, read operators (by id, by certificate, of an RA);
/// - submit a request (with its identity verification), add an identity
///   verification, read requests (by id, by idempotency key, of an RA) and move
///   a request from one status to another;
/// - read CAs (by id, by name, a chain), certificates (by row, serial, request
///   key, the one a client presents in force, an RA's by serial in its scope or
///   not) and the other of a km pair;
/// - make, move and read credential offers, read a mobile ID and revoke
///   mobile IDs (one, or an official's on a holder's report);
///
/// The service scaffolding (callers in force, health, the audit of refusals) is
/// the RA service's front, built on the whole store before the book: the book
/// hands the store to no one.
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

    crate::handle::delegate! {
        /// [`Store::add_operator`].
        async fn add_operator(&self, ra_id: i64, name: &str, cert_id: i64, admin: bool, audit: &AuditEvent) -> Result<OperatorRecord>;
        /// [`Store::authority_by_name`].
        async fn authority_by_name(&self, name: &str) -> Result<AuthorityRecord>;
        /// [`Store::authority_chain`].
        async fn authority_chain(&self, id: i64) -> Result<Vec<Vec<u8>>>;
        /// [`Store::authority`].
        async fn authority(&self, id: i64) -> Result<AuthorityRecord>;
        /// [`Store::certificate_by_id`].
        async fn certificate_by_id(&self, id: i64) -> Result<CertificateRecord>;
        /// [`Store::certificate_by_request_key`].
        async fn certificate_by_request_key(&self, issuer_id: i64, key: &str) -> Result<Option<CertificateRecord>>;
        /// [`Store::certificate_in_force`].
        async fn certificate_in_force(&self, der: &[u8], now: i64) -> Result<(CertificateRecord, AuthorityRecord)>;
        /// [`Store::scoped_certificate`].
        async fn scoped_certificate(&self, ra: &RaRecord, serial: &str) -> Result<CertificateRecord>;
        /// [`Store::unscoped_ra_certificate`].
        async fn unscoped_ra_certificate(&self, ra: &RaRecord, serial: &str) -> Result<CertificateRecord>;
        /// [`Store::create_offer`].
        async fn create_offer(&self, new: &NewOffer, audit: &AuditEvent) -> Result<(OfferRecord, bool)>;
        /// [`Store::credential`].
        async fn credential(&self, id: i64) -> Result<CredentialRecord>;
        /// [`Store::move_offer`].
        async fn move_offer(&self, id: i64, from: &str, to: &str, holder_jkt: Option<&str>, credential_id: Option<i64>, audit: &AuditEvent) -> Result<OfferRecord>;
        /// [`Store::offer_of_credential`].
        async fn offer_of_credential(&self, credential_id: i64) -> Result<Option<OfferRecord>>;
        /// [`Store::offer`].
        async fn offer(&self, id: i64) -> Result<OfferRecord>;
        /// [`Store::operator_by_cert`].
        async fn operator_by_cert(&self, cert_id: i64) -> Result<Option<OperatorRecord>>;
        /// [`Store::operator`].
        async fn operator(&self, id: i64) -> Result<OperatorRecord>;
        /// [`Store::operators`].
        async fn operators(&self, ra_id: i64) -> Result<Vec<OperatorRecord>>;
        /// [`Store::pair_of`].
        async fn pair_of(&self, cert_id: i64) -> Result<Option<i64>>;
        /// [`Store::ra`].
        async fn ra(&self, id: i64) -> Result<RaRecord>;
        /// [`Store::ras`].
        async fn ras(&self) -> Result<Vec<RaRecord>>;
        /// [`Store::request_by_key`].
        async fn request_by_key(&self, ra_id: i64, key: &str) -> Result<Option<RaRequest>>;
        /// [`Store::request`].
        async fn request(&self, id: i64) -> Result<RaRequest>;
        /// [`Store::requests`].
        async fn requests(&self, ra_id: i64, status: Option<&str>, limit: i64) -> Result<Vec<RaRequest>>;
        /// [`Store::revoke_credential`].
        async fn revoke_credential(&self, id: i64, reason: &str, audit: &AuditEvent) -> Result<CredentialRecord>;
        /// [`Store::revoke_official_credentials`].
        async fn revoke_official_credentials(&self, employee_number: &str, issued_before: i64, reason: &str, actor: &str, detail: serde_json::Value) -> Result<Vec<CredentialRecord>>;
        /// [`Store::set_operator_status`].
        async fn set_operator_status(&self, id: i64, status: &str, audit: &AuditEvent) -> Result<OperatorRecord>;
        /// [`Store::submit_request`].
        async fn submit_request(&self, new: &NewRequest, identity: Option<&IdentityRecord>, audit: &AuditEvent) -> Result<(RaRequest, bool)>;
        /// [`Store::transition`].
        async fn transition(&self, r: &RaRequest, t: &Transition<'_>, audit: &AuditEvent) -> Result<RaRequest>;
        /// [`Store::verify_identity`].
        async fn verify_identity(&self, request_id: i64, identity: &IdentityRecord, audit: &AuditEvent) -> Result<RaRequest>;
    }
}
