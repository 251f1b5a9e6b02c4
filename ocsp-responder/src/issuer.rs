//! Issuer discovery for the mobile credentials, X.509 and DID alike: the SD-JWT VC
//! issuer metadata (`/.well-known/jwt-vc-issuer`, draft-ietf-oauth-sd-jwt-vc §5: the
//! signer keys as JWKs, each with its `x5c` chain) and the issuer's `did:web` DID
//! document (`/.well-known/did.json`), both naming the same keys: the
//! credential-signer certificates of `[credential_issuer] ca` that the store holds in
//! force now and that carry the issuer's identifier as a URI subjectAltName.
//!
//! A key is named while its certificate is issued, within its validity and under a CA
//! that stands; revoked (a rotation retires the old key as `superseded`), on hold or
//! expired, it leaves both documents at the next read of the store (at most once a
//! second), so a verifier that trusts the issuer by DID and one that trusts it by
//! X.509 and OCSP reach the same decision. Each key's `kid` is its RFC 7638
//! thumbprint, the `kid` gpki puts in the header of every SD-JWT it issues.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gpki_credentials::keys::PublicKey;
use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::{plain, Body};
use gpki_store::{CertFilter, CertStatus};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::State;

/// `[credential_issuer]` in ocsp.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer identifier: the SD-JWT VC `iss` and the URI subjectAltName of its
    /// signer certificates, an `https://` URL (`https://id.gpki.go.kr`).
    pub id: String,
    /// The credential CA whose credential-signer certificates are the issuer's keys.
    pub ca: String,
    /// Seconds a verifier may keep either document (`Cache-Control: max-age`).
    #[serde(default = "default_max_age")]
    pub max_age_seconds: i64,
}

fn default_max_age() -> i64 {
    300
}

/// Where the identifier puts the two documents, and the DID it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `/.well-known/jwt-vc-issuer` followed by the identifier's path.
    pub metadata: String,
    /// `/.well-known/did.json`, or `PATH/did.json` when the identifier has a path.
    pub did_document: String,
    /// `did:web:HOST[%3APORT][:SEGMENT…]` (did:web §3.2).
    pub did: String,
}

impl IssuerConfig {
    pub fn check(&self) -> Result<()> {
        self.paths()?;
        if !(10..=86_400).contains(&self.max_age_seconds) {
            return Err(Error::malformed(
                "[credential_issuer] max_age_seconds must be 10 to 86400",
            ));
        }
        Ok(())
    }

    /// The documents' paths and the DID, from the identifier: an `https` URL with a
    /// host, an optional port and path, and no user, query or fragment.
    pub fn paths(&self) -> Result<Paths> {
        let bad = |why: &str| {
            Error::malformed(format!(
                "[credential_issuer] id `{}` {why}",
                self.id.escape_debug()
            ))
        };
        let rest = self
            .id
            .strip_prefix("https://")
            .ok_or_else(|| bad("is not an https:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
            Some(_) => return Err(bad("has a malformed port")),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
        if !host_ok {
            return Err(bad("does not name a host"));
        }
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let segment_ok = |s: &&str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
                && *s != "."
                && *s != ".."
        };
        if !segments.iter().all(segment_ok) {
            return Err(bad("has a path segment did:web cannot carry"));
        }
        let mut did = format!("did:web:{}", host.to_ascii_lowercase());
        if let Some(p) = port {
            did += &format!("%3A{p}");
        }
        for s in &segments {
            did += &format!(":{s}");
        }
        Ok(Paths {
            metadata: format!("/.well-known/jwt-vc-issuer{path}"),
            did_document: if path.is_empty() {
                "/.well-known/did.json".into()
            } else {
                format!("{path}/did.json")
            },
            did,
        })
    }
}

/// How long the documents held are taken as current without asking the store.
const RECHECK: Duration = Duration::from_secs(1);
/// Keys named at most.
const MAX_KEYS: usize = 64;
/// Credential-signer rows of one status read at most (a CA with more is refused).
const SCANNED: i64 = 10_000;

fn too_many(ca: &str) -> Error {
    Error::conflict(format!(
        "CA `{ca}` has more credential-signer certificates than the issuer documents list"
    ))
}

/// The issuer's two documents, built together from one read of the store.
struct Documents {
    metadata: Bytes,
    did: Bytes,
    etag: String,
    built: i64,
    checked: Instant,
}

/// What `[credential_issuer]` serves.
pub struct Issuer {
    config: IssuerConfig,
    paths: Paths,
    held: Mutex<Option<std::sync::Arc<Documents>>>,
    /// The last failed read, answered again for RECHECK without asking the store.
    failed: Mutex<Option<(Instant, Error)>>,
    refresh: tokio::sync::Mutex<()>,
}

/// Which document a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Metadata,
    Did,
}

impl Issuer {
    pub fn new(config: &IssuerConfig) -> Result<Issuer> {
        config.check()?;
        Ok(Issuer {
            paths: config.paths()?,
            config: config.clone(),
            held: Mutex::new(None),
            failed: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The document `path` names, if any.
    pub fn route(&self, path: &str) -> Option<Document> {
        if path == self.paths.metadata {
            Some(Document::Metadata)
        } else if path == self.paths.did_document {
            Some(Document::Did)
        } else {
            None
        }
    }

    fn current(&self) -> Option<std::sync::Arc<Documents>> {
        self.held
            .lock()
            .expect("lock")
            .clone()
            .filter(|d| d.checked.elapsed() < RECHECK)
    }
}

/// Serves the metadata or the DID document.
pub async fn serve(state: &State, which: Document, headers: &HeaderMap) -> Response<Body> {
    let Some(issuer) = &state.issuer else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    match documents(state, issuer).await {
        Ok(d) => respond(issuer, &d, which, headers),
        Err(e) => {
            tracing::warn!(error = %e, "issuer documents unavailable");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("issuer keys: {}", e.kind),
            )
        }
    }
}

async fn documents(state: &State, issuer: &Issuer) -> Result<std::sync::Arc<Documents>> {
    if let Some(d) = issuer.current() {
        return Ok(d);
    }
    let _one = issuer.refresh.lock().await;
    if let Some(d) = issuer.current() {
        return Ok(d);
    }
    let recent = issuer.failed.lock().expect("lock").clone();
    if let Some((_, e)) = recent.filter(|(at, _)| at.elapsed() < RECHECK) {
        // A store that just failed is not asked again by every waiting request.
        return served_while_down(issuer, e);
    }
    let wait = Duration::from_millis(state.config.store_timeout_ms);
    let read = tokio::time::timeout(wait * 4, keys(state, issuer)).await;
    let now = gpki_pki::time::now();
    let keys = match read {
        Ok(Ok(keys)) => keys,
        Ok(Err(e)) => return failed(issuer, e),
        Err(_) => {
            return failed(
                issuer,
                Error::new(ErrorKind::Unavailable, "store timed out"),
            )
        }
    };
    let d = std::sync::Arc::new(build(issuer, &keys, now)?);
    *issuer.held.lock().expect("lock") = Some(d.clone());
    *issuer.failed.lock().expect("lock") = None;
    Ok(d)
}

fn failed(issuer: &Issuer, e: Error) -> Result<std::sync::Arc<Documents>> {
    *issuer.failed.lock().expect("lock") = Some((Instant::now(), e.clone()));
    served_while_down(issuer, e)
}

/// The store is out of reach: the documents held are served while a verifier may
/// still keep them, then the error, so an outage does not keep a revoked key listed
/// for long.
fn served_while_down(issuer: &Issuer, e: Error) -> Result<std::sync::Arc<Documents>> {
    let now = gpki_pki::time::now();
    let held = issuer.held.lock().expect("lock").clone();
    held.filter(|d| now < d.built + issuer.config.max_age_seconds)
        .ok_or(e)
}

/// One signer key: its JWK (with kid, use, alg) and its x5c chain.
struct Key {
    jwk: Value,
    kid: String,
}

/// The credential-signer certificates of the CA in force now that carry the
/// issuer's identifier, oldest first; none while the CA does not stand.
async fn keys(state: &State, issuer: &Issuer) -> Result<Vec<Key>> {
    let store = &state.store;
    let ca = store.authority_by_name(&issuer.config.ca).await?;
    let now = gpki_pki::time::now();
    if store.standing(&ca, now).await? != gpki_store::standing::Standing::Active {
        return Ok(Vec::new());
    }
    let filter = |status| CertFilter {
        issuer_id: Some(ca.id),
        status: Some(status),
        profile: Some("credential-signer".into()),
        limit: SCANNED,
        ..CertFilter::default()
    };
    let signers = |status| {
        let f = filter(status);
        async move { store.list_certificates(&f).await }
    };
    let mut rows = signers(CertStatus::Issued).await?;
    // A key is named by its thumbprint, not by a certificate: a key that any
    // certificate of the CA has revoked or put on hold is named by none, or a
    // verifier selecting by kid would still trust what OCSP refuses.
    let mut withdrawn = std::collections::HashSet::new();
    for status in [CertStatus::Revoked, CertStatus::Hold] {
        let found = signers(status).await?;
        if found.len() as i64 >= SCANNED {
            return Err(too_many(&issuer.config.ca));
        }
        withdrawn.extend(found.into_iter().map(|r| r.spki_sha256));
    }
    if rows.len() as i64 >= SCANNED {
        return Err(too_many(&issuer.config.ca));
    }
    rows.retain(|r| {
        r.not_before <= now && now < r.not_after && !withdrawn.contains(&r.spki_sha256)
    });
    rows.reverse();
    // The CA's chain above the leaf, the self-signed root left out (as in x5c).
    let mut above = store.authority_chain(ca.id).await?;
    if let Some(last) = above.last() {
        let root = gpki_pki::cert::decode(last)?;
        if root.tbs_certificate.subject == root.tbs_certificate.issuer {
            above.pop();
        }
    }
    let b64 = |der: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
    let mut out = Vec::new();
    for row in rows {
        let Some(der) = row.der.as_deref() else {
            continue;
        };
        let key = match signer_key(der, &issuer.config.id) {
            Ok(Some(k)) => k,
            Ok(None) => continue,
            Err(e) => {
                // One certificate gpki cannot read must not take every key down.
                tracing::warn!(serial = %row.serial, error = %e, "credential signer left out of the issuer documents");
                continue;
            }
        };
        let kid = key.thumbprint();
        if out.iter().any(|k: &Key| k.kid == kid) {
            // Two certificates in force for one key (a renewal that kept it): one JWK.
            continue;
        }
        if out.len() == MAX_KEYS {
            return Err(too_many(&issuer.config.ca));
        }
        let mut jwk = key.to_jwk();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(key.alg().jose());
        let mut x5c = vec![json!(b64(der))];
        x5c.extend(above.iter().map(|c| json!(b64(c))));
        jwk["x5c"] = Value::Array(x5c);
        out.push(Key { jwk, kid });
    }
    Ok(out)
}

/// The key of a signer certificate that names `id` as a URI SAN and carries mdlDS.
fn signer_key(der: &[u8], id: &str) -> Result<Option<PublicKey>> {
    let cert = gpki_pki::cert::decode(der)?;
    let named = gpki_pki::cert::san_entries(&cert.tbs_certificate)?
        .into_iter()
        .any(|s| matches!(s, gpki_pki::cert::SanEntry::Uri(u) if u == id));
    let purpose = gpki_credentials::keys::extended_key_usages(&cert)?
        .contains(&gpki_pki::profile::EKU_MDL_DS);
    if !named || !purpose {
        return Ok(None);
    }
    PublicKey::from_certificate(der).map(Some)
}

fn build(issuer: &Issuer, keys: &[Key], now: i64) -> Result<Documents> {
    let did = &issuer.paths.did;
    let metadata = json!({
        "issuer": issuer.config.id,
        "jwks": { "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() },
    });
    let method = |k: &Key| format!("{did}#{}", k.kid);
    let document = json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/jws-2020/v1",
        ],
        "id": did,
        "alsoKnownAs": [issuer.config.id],
        "verificationMethod": keys.iter().map(|k| json!({
            "id": method(k),
            "type": "JsonWebKey2020",
            "controller": did,
            "publicKeyJwk": k.jwk,
        })).collect::<Vec<_>>(),
        "assertionMethod": keys.iter().map(method).collect::<Vec<_>>(),
    });
    let encode = |v: &Value| {
        serde_json::to_vec_pretty(v)
            .map(Bytes::from)
            .map_err(|e| Error::internal(format!("issuer document: {e}")))
    };
    let metadata = encode(&metadata)?;
    let did = encode(&document)?;
    let digest = openssl::sha::sha256(&[&metadata[..], &did[..]].concat());
    let etag = gpki_credentials::b64::encode(&digest[..12]);
    Ok(Documents {
        metadata,
        did,
        etag,
        built: now,
        checked: Instant::now(),
    })
}

fn respond(issuer: &Issuer, d: &Documents, which: Document, request: &HeaderMap) -> Response<Body> {
    let (body, kind, media) = match which {
        Document::Metadata => (&d.metadata, "jwt-vc-issuer", "application/json"),
        Document::Did => (&d.did, "did", "application/did+json"),
    };
    let etag = format!("\"{}-{kind}\"", d.etag);
    let mut r = crate::http::conditional(&etag, body.clone(), request);
    let max_age = issuer.config.max_age_seconds;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("max-age={max_age}, public")).expect("ASCII"),
    );
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("ASCII"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(id: &str) -> Result<Paths> {
        IssuerConfig {
            id: id.into(),
            ca: "mobile-id".into(),
            max_age_seconds: 300,
        }
        .paths()
    }

    #[test]
    fn an_identifier_gives_the_well_known_paths_and_the_did_web() {
        let p = paths("https://id.gpki.go.kr").unwrap();
        assert_eq!(p.metadata, "/.well-known/jwt-vc-issuer");
        assert_eq!(p.did_document, "/.well-known/did.json");
        assert_eq!(p.did, "did:web:id.gpki.go.kr");
        // did:web §3.2: the port's colon percent-encoded, path segments as `:`.
        let p = paths("https://ID.gpki.go.kr:8443/mois/mpoid/").unwrap();
        assert_eq!(p.metadata, "/.well-known/jwt-vc-issuer/mois/mpoid");
        assert_eq!(p.did_document, "/mois/mpoid/did.json");
        assert_eq!(p.did, "did:web:id.gpki.go.kr%3A8443:mois:mpoid");
    }

    #[test]
    fn identifiers_did_web_cannot_carry_are_refused_by_name() {
        for (id, why) in [
            ("http://id.gpki.go.kr", "https"),
            ("https://", "host"),
            ("https://user@id.gpki.go.kr", "host"),
            ("https://id.gpki.go.kr:x", "port"),
            ("https://id.gpki.go.kr/a/../b", "segment"),
            ("https://id.gpki.go.kr/a?b", "segment"),
            ("https://id.gpki.go.kr//a", "segment"),
        ] {
            let e = paths(id).unwrap_err();
            assert!(e.detail.contains(why), "{id}: {}", e.detail);
        }
    }
}
