//! Mutual TLS for the internal APIs (the CA service and the RA service), with
//! rustls on both ends and the *ring* provider.
//!
//! The TLS layer authenticates: a client certificate must chain to the configured
//! trust anchor (rustls' `WebPkiClientVerifier`), and the client must prove it holds
//! the key. It does not authorise: which certificate may do what, and whether it is
//! still in force, is decided per request by the service from the store (a CRL may
//! be hours old; the store is not). So the verifier lets a client without a
//! certificate finish the handshake, and the service refuses it with a reply it can
//! read and an audit record, rather than a bare handshake alert.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, Result, Signer, SoftwareKey};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The crypto provider of every gpki TLS end.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The end-entity certificate the client presented (DER), in the request's
/// extensions. Present only when the handshake verified it against the anchors.
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Arc<Vec<u8>>);

impl PeerCertificate {
    pub(crate) fn of(conn: &rustls::ServerConnection) -> Option<PeerCertificate> {
        conn.peer_certificates()
            .and_then(|c| c.first())
            .map(|c| PeerCertificate(Arc::new(c.to_vec())))
    }
}

/// A certificate chain (end entity first) and its private key.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Reads a PEM certificate file (the end-entity certificate, then any
    /// intermediates) and a gpki encrypted key file.
    pub fn load(cert: &Path, key: &Path, passphrase: &Passphrase) -> Result<Identity> {
        let chain = read_certificates(cert)?;
        let key = SoftwareKey::read_encrypted(key, passphrase)?;
        Identity::new(chain, &key)
    }

    /// An identity from DER certificates (end entity first) and a key.
    pub fn new(chain: Vec<Vec<u8>>, key: &SoftwareKey) -> Result<Identity> {
        if chain.is_empty() {
            return Err(Error::malformed("a TLS identity needs a certificate"));
        }
        let leaf = gpki_pki::cert::decode(&chain[0])?;
        let spki = der::Encode::to_der(&leaf.tbs_certificate.subject_public_key_info)?;
        if spki != key.public_key_der() {
            return Err(Error::malformed(
                "the TLS certificate does not belong to the key given",
            ));
        }
        let pkcs8 = key
            .pkey()
            .private_key_to_pkcs8()
            .map_err(|e| Error::internal(format!("key export for TLS: {e}")))?;
        Ok(Identity {
            chain: chain.into_iter().map(CertificateDer::from).collect(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)),
        })
    }
}

/// Every CERTIFICATE block of a PEM file, as DER.
pub fn read_certificates(path: &Path) -> Result<Vec<Vec<u8>>> {
    let text = std::fs::read(path)
        .map_err(|e| Error::not_found(format!("cannot read {}: {e}", path.display())))?;
    let certs =
        gpki_pki::pem::decode_all(&text, "CERTIFICATE").map_err(|e| e.context(path.display()))?;
    if certs.is_empty() {
        return Err(Error::malformed(format!(
            "{}: no CERTIFICATE block",
            path.display()
        )));
    }
    Ok(certs)
}

fn roots(anchors: &[Vec<u8>]) -> Result<Arc<RootCertStore>> {
    let mut store = RootCertStore::empty();
    for a in anchors {
        store
            .add(CertificateDer::from(a.clone()))
            .map_err(|e| Error::malformed(format!("trust anchor: {e}")))?;
    }
    if store.is_empty() {
        return Err(Error::malformed("no trust anchor given"));
    }
    Ok(Arc::new(store))
}

/// What a service does with a refused handshake: the peer and why.
pub type OnRefused = Arc<dyn Fn(SocketAddr, &str) + Send + Sync>;

/// What [`crate::serve_https`] needs: the rustls acceptor and what to do with a
/// refused handshake (a client certificate from an unknown CA, a bad proof, a
/// timeout): the services count and audit it.
#[derive(Clone)]
pub struct Acceptor {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) on_refused: OnRefused,
}

impl Acceptor {
    /// A server that presents `identity` and verifies client certificates against
    /// `client_anchors`; a client may also come without one (refused per request).
    pub fn new(
        identity: Identity,
        client_anchors: &[Vec<u8>],
        on_refused: OnRefused,
    ) -> Result<Acceptor> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(roots(client_anchors)?, provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| Error::malformed(format!("client verifier: {e}")))?;
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::internal(format!("TLS versions: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(identity.chain, identity.key)
            .map_err(|e| Error::malformed(format!("TLS certificate: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Acceptor {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            on_refused,
        })
    }
}

/// A client configuration that trusts `anchors` for the server and presents
/// `identity` (when given) as its client certificate.
pub fn client_config(identity: Option<Identity>, anchors: &[Vec<u8>]) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS versions: {e}")))?
        .with_root_certificates(roots(anchors)?);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain, id.key)
            .map_err(|e| Error::malformed(format!("client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
