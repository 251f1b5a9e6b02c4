//! One CA the responder answers for: how its CertIDs are recognised, its
//! delegated responder key, and the status (and pre-signed response) of each of
//! its certificates.

use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use dashmap::DashMap;
use der::{Decode, Encode};
use gpki_pki::signed::push_tlv;
use gpki_pki::{Error, Result};
use gpki_store::StatusRow;
use hyper::header::HeaderValue;

use crate::request::{HashAlg, RequestedCert};
use crate::response::{push_single_response, CertState, ResponderKey};

/// A response signed ahead of time for the SHA-1 CertID of one certificate, with
/// the RFC 5019 header values that go with it.
pub struct Presigned {
    pub der: Bytes,
    pub this_update: i64,
    pub next_update: i64,
    pub etag: HeaderValue,
    pub last_modified: HeaderValue,
    pub expires: HeaderValue,
}

/// What the responder knows of one certificate.
pub struct Entry {
    pub state: CertState,
    /// The store's revocation sequence for the row this state was read from (0 for
    /// a row never revoked, held or released): states are ordered by it, so an older
    /// read never replaces a newer one (design invariant 9).
    pub version: i64,
    pub presigned: Option<Presigned>,
}

/// The version a store row's state carries (see [`Entry::version`]).
pub fn version_of(row: &StatusRow) -> i64 {
    row.revocation_seq.unwrap_or(0)
}

/// A CA being served.
pub struct Authority {
    pub name: String,
    pub id: i64,
    /// The CA's certificate, DER: a new responder certificate must chain to it.
    pub ca_cert_der: Vec<u8>,
    /// (algorithm, issuerNameHash, issuerKeyHash) for every supported algorithm.
    hashes: Vec<(HashAlg, Vec<u8>, Vec<u8>)>,
    /// The DER of a SHA-1 CertID up to its serial: AlgorithmIdentifier and hashes.
    sha1_prefix: Vec<u8>,
    pub responder: RwLock<Arc<ResponderKey>>,
    /// Certificates by serial magnitude.
    pub entries: DashMap<Vec<u8>, Arc<Entry>>,
    /// The oldest thisUpdate among pre-signed responses (`i64::MAX` when none).
    pub oldest: AtomicI64,
    /// Set when an entry without a pre-signed response was added.
    pub needs_signing: AtomicBool,
}

/// The state a store row stands for.
pub fn state_of(row: &StatusRow) -> CertState {
    match row.status.as_str() {
        // A pending row may have been signed just before a crash (invariant 1):
        // its serial is in use, so it is not "unknown".
        "issued" | "pending" => CertState::Good,
        "revoked" | "hold" => CertState::Revoked {
            at: row.revoked_at.unwrap_or(0),
            reason: row
                .reason
                .and_then(|r| u8::try_from(r).ok())
                .filter(|r| *r != 0),
        },
        _ => CertState::Unknown,
    }
}

impl Authority {
    pub fn new(
        name: String,
        id: i64,
        ca_cert_der: &[u8],
        responder: ResponderKey,
    ) -> Result<Authority> {
        let cert = x509_cert::Certificate::from_der(ca_cert_der)
            .map_err(|e| Error::malformed(format!("certificate of CA `{name}`: {e}")))?;
        let tbs = &cert.tbs_certificate;
        let name_der = tbs.subject.to_der()?;
        let key_bits = tbs.subject_public_key_info.subject_public_key.raw_bytes();
        let hashes: Vec<_> = HashAlg::ALL
            .iter()
            .map(|h| (*h, h.digest(&name_der), h.digest(key_bits)))
            .collect();
        let mut sha1_prefix = vec![
            0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
        ];
        push_tlv(&mut sha1_prefix, 0x04, &hashes[0].1);
        push_tlv(&mut sha1_prefix, 0x04, &hashes[0].2);
        Ok(Authority {
            name,
            id,
            ca_cert_der: ca_cert_der.to_vec(),
            hashes,
            sha1_prefix,
            responder: RwLock::new(Arc::new(responder)),
            entries: DashMap::new(),
            oldest: AtomicI64::new(i64::MAX),
            needs_signing: AtomicBool::new(false),
        })
    }

    /// Whether the CertID names this CA as issuer.
    pub fn issued(&self, id: &RequestedCert) -> bool {
        match id.hash {
            Some(h) => self
                .hashes
                .iter()
                .any(|(alg, n, k)| *alg == h && *n == id.name_hash && *k == id.key_hash),
            None => false,
        }
    }

    /// The DER SHA-1 CertID of `serial` (a magnitude), as pre-signed responses carry it.
    pub fn sha1_cert_id(&self, serial: &[u8]) -> Vec<u8> {
        let mut int = Vec::with_capacity(serial.len() + 1);
        if serial.first().is_some_and(|b| b & 0x80 != 0) {
            int.push(0);
        }
        int.extend_from_slice(serial);
        let mut body = Vec::with_capacity(self.sha1_prefix.len() + int.len() + 4);
        body.extend_from_slice(&self.sha1_prefix);
        push_tlv(&mut body, 0x02, &int);
        let mut out = Vec::with_capacity(body.len() + 4);
        push_tlv(&mut out, 0x30, &body);
        out
    }

    /// Whether a requested CertID (DER) is the SHA-1 form responses are pre-signed
    /// for: same AlgorithmIdentifier octets (NULL parameters) and hashes.
    pub fn is_presigned_form(&self, cert_id: &[u8]) -> bool {
        let body = match cert_id {
            [0x30, len, rest @ ..] if *len < 0x80 => rest,
            [0x30, 0x81, _, rest @ ..] => rest,
            _ => return false,
        };
        body.starts_with(&self.sha1_prefix)
    }

    /// Stores `entry` for `serial` unless the map holds a strictly newer state. The
    /// worker's reads are sequential, so one of the same version is its own later
    /// read and replaces. Returns the entry the map holds afterwards.
    pub fn put(&self, serial: Vec<u8>, entry: Arc<Entry>) -> Arc<Entry> {
        self.put_ordered(serial, entry, |held, new| held <= new)
    }

    /// Stores `entry` only where the map has nothing for `serial` or an older state:
    /// for a read made outside the worker (a cache miss), which may be older than
    /// what the worker applied meanwhile at the same version. Returns the entry the
    /// map holds afterwards.
    pub fn put_if_newer(&self, serial: Vec<u8>, entry: Arc<Entry>) -> Arc<Entry> {
        self.put_ordered(serial, entry, |held, new| held < new)
    }

    fn put_ordered(
        &self,
        serial: Vec<u8>,
        entry: Arc<Entry>,
        replaces: impl Fn(i64, i64) -> bool,
    ) -> Arc<Entry> {
        // The shard stays locked from the comparison to the write.
        match self.entries.entry(serial) {
            dashmap::Entry::Occupied(mut held) => {
                if replaces(held.get().version, entry.version) {
                    held.insert(entry.clone());
                    entry
                } else {
                    held.get().clone()
                }
            }
            dashmap::Entry::Vacant(slot) => {
                slot.insert(entry.clone());
                entry
            }
        }
    }

    pub fn responder(&self) -> Arc<ResponderKey> {
        self.responder.read().expect("responder lock").clone()
    }

    /// Signs the response for one certificate ahead of time.
    pub fn presign(
        &self,
        responder: &ResponderKey,
        serial: &[u8],
        state: CertState,
        this_update: i64,
        next_update: i64,
    ) -> Result<Presigned> {
        let mut single = Vec::with_capacity(128);
        push_single_response(
            &mut single,
            &self.sha1_cert_id(serial),
            state,
            this_update,
            next_update,
        )?;
        let der = responder.sign(this_update, &single, None)?;
        let digest = openssl::sha::sha256(&der);
        let etag = format!("\"{}\"", hex::encode(&digest[..16]));
        let date = |t: i64| {
            let st = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
            HeaderValue::from_str(&httpdate::fmt_http_date(st)).expect("HTTP date is ASCII")
        };
        Ok(Presigned {
            der: Bytes::from(der),
            this_update,
            next_update,
            etag: HeaderValue::from_str(&etag).expect("hex is ASCII"),
            last_modified: date(this_update),
            expires: date(next_update),
        })
    }
}

/// Decodes a serial as the store writes it (lower-case hex).
pub fn serial_bytes(hex_serial: &str) -> Option<Vec<u8>> {
    let mut b = hex::decode(hex_serial).ok()?;
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.drain(..start);
    Some(b)
}
