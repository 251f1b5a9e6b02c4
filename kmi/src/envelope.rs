//! CMS EnvelopedData (RFC 5652 §6) for RSA recipients.
//!
//! What gpki seals: a random AES-256 content-encryption key, the content under
//! AES-256-CBC (RFC 3565), and the key transported to each recipient with RSAES-OAEP
//! (SHA-256, MGF1-SHA-256; RFC 4055, RFC 8017 §7.1). A certificate recipient (the
//! KRA, a km certificate) is named by issuer and serial number; a bare public key
//! (an official's transport key) by its subject key identifier.
//!
//! What gpki opens: the same, and also what `openssl cms -encrypt` makes by default
//! (PKCS#1 v1.5 key transport, AES-128/192/256-CBC), since documents come from many
//! systems. Key agreement (ECDH) recipients are refused by name: every key that
//! gpki archives or encrypts to is RSA (profiles official-km and key-recovery).
//!
//! The DER types are RustCrypto `cms`; the cryptography is OpenSSL. `cms` 0.2's
//! builder transports keys with PKCS#1 v1.5 only, so the recipient infos are
//! assembled here.

use cms::cert::IssuerAndSerialNumber;
use cms::enveloped_data::{
    KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo, RecipientInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use gpki_pki::{Error, ErrorKind, Result};
use openssl::hash::MessageDigest;
use openssl::md::{Md, MdRef};
use openssl::pkey::{HasPrivate, PKey, PKeyRef, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::symm::Cipher;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use zeroize::Zeroizing;

pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
pub const ID_ENVELOPED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
const ID_AUTH_ENVELOPED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.23");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_RSAES_OAEP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.7");
const ID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const ID_P_SPECIFIED: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.9");
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const AES128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
const AES192_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22");
const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");
/// What `openssl cms -encrypt` uses when no cipher is named.
const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");

/// The most recipients a message may name before gpki stops reading it.
pub const MAX_RECIPIENTS: usize = 64;

/// RSAES-OAEP-params (RFC 8017 Appendix A.2.1); every field present, as RFC 4055
/// §4.1 asks of a non-default hash.
#[derive(Clone, Debug, Sequence)]
struct OaepParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    p_source: Option<AlgorithmIdentifierOwned>,
}

/// Who a message is sealed to.
#[derive(Debug, Clone, Copy)]
pub enum Recipient<'a> {
    /// A certificate (DER): the KRA's, or an official's km certificate. Named by
    /// issuer and serial number.
    Certificate(&'a [u8]),
    /// A bare RSA public key (DER SubjectPublicKeyInfo): an official's one-time
    /// transport key. Named by its key identifier (RFC 5280 §4.2.1.2, method 1).
    PublicKey(&'a [u8]),
}

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::malformed(format!("EnvelopedData: {what}"))
}

fn ossl(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> Error {
    move |e| Error::internal(format!("{what}: {e}"))
}

fn alg(oid: ObjectIdentifier, parameters: Option<Any>) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid, parameters }
}

/// The key identifier of a SubjectPublicKeyInfo: SHA-1 of its subjectPublicKey bits.
pub fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>> {
    let spki = gpki_pki::signer::spki_from_der(spki_der)?;
    Ok(openssl::sha::sha1(spki.subject_public_key.raw_bytes()).to_vec())
}

fn rsa_public_key(spki_der: &[u8]) -> Result<PKey<Public>> {
    let key = PKey::public_key_from_der(spki_der).map_err(|_| {
        Error::malformed("recipient public key is not a valid SubjectPublicKeyInfo")
    })?;
    if key.rsa().is_err() {
        return Err(Error::policy(
            "recipient key is not RSA: gpki encrypts to RSA keys only (RSA-OAEP key transport)",
        ));
    }
    if key.bits() < 2048 {
        return Err(Error::policy(format!(
            "recipient RSA key has {} bits; at least 2048 are required",
            key.bits()
        )));
    }
    Ok(key)
}

/// Seals `content` (as id-data) to every recipient; the DER ContentInfo.
pub fn seal(content: &[u8], recipients: &[Recipient<'_>]) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        return Err(Error::malformed(
            "EnvelopedData needs at least one recipient",
        ));
    }
    let mut cek = Zeroizing::new([0u8; 32]);
    let mut iv = [0u8; 16];
    openssl::rand::rand_bytes(&mut cek[..]).map_err(ossl("random"))?;
    openssl::rand::rand_bytes(&mut iv).map_err(ossl("random"))?;
    let mut infos = SetOfVec::new();
    for r in recipients {
        let (rid, spki) = match r {
            Recipient::Certificate(der) => {
                let cert = Certificate::from_der(der)
                    .map_err(|e| Error::malformed(format!("recipient certificate: {e}")))?;
                let spki = cert.tbs_certificate.subject_public_key_info.to_der()?;
                (
                    RecipientIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                        issuer: cert.tbs_certificate.issuer.clone(),
                        serial_number: cert.tbs_certificate.serial_number.clone(),
                    }),
                    spki,
                )
            }
            Recipient::PublicKey(spki) => (
                RecipientIdentifier::SubjectKeyIdentifier(
                    x509_cert::ext::pkix::SubjectKeyIdentifier(OctetString::new(key_identifier(
                        spki,
                    )?)?),
                ),
                spki.to_vec(),
            ),
        };
        let key = rsa_public_key(&spki)?;
        let mut ctx = PkeyCtx::new(&key).map_err(ossl("RSA-OAEP"))?;
        let mut enc = Vec::new();
        ctx.encrypt_init()
            .and_then(|_| ctx.set_rsa_padding(Padding::PKCS1_OAEP))
            .and_then(|_| ctx.set_rsa_oaep_md(Md::sha256()))
            .and_then(|_| ctx.set_rsa_mgf1_md(Md::sha256()))
            .and_then(|_| ctx.encrypt_to_vec(&cek[..], &mut enc))
            .map_err(ossl("RSA-OAEP encryption"))?;
        let sha256 = alg(ID_SHA256, None);
        let params = OaepParams {
            hash: Some(sha256.clone()),
            mask_gen: Some(alg(ID_MGF1, Some(Any::encode_from(&sha256)?))),
            p_source: None,
        };
        let version = match rid {
            RecipientIdentifier::IssuerAndSerialNumber(_) => cms::content_info::CmsVersion::V0,
            RecipientIdentifier::SubjectKeyIdentifier(_) => cms::content_info::CmsVersion::V2,
        };
        infos
            .insert(RecipientInfo::Ktri(KeyTransRecipientInfo {
                version,
                rid,
                key_enc_alg: alg(ID_RSAES_OAEP, Some(Any::encode_from(&params)?)),
                enc_key: OctetString::new(enc)?,
            }))
            .map_err(|e| Error::internal(format!("recipient infos: {e}")))?;
    }
    let all_v0 = infos.iter().all(|i| match i {
        RecipientInfo::Ktri(k) => k.version == cms::content_info::CmsVersion::V0,
        _ => false,
    });
    // The message is assembled around the ciphertext, which is written in place:
    // at 1 MiB, encoding owned DER types copied the content twice, which cost
    // more than AES (docs/benchmarks.md, "Standard API").
    use gpki_pki::signed::{header_len, push_header, push_tlv};
    // RFC 5652 §6.1: 0 when every recipient is version 0, else 2.
    let version = if all_v0 { 0u8 } else { 2 };
    let recipient_set = RecipientInfos(infos).to_der()?;
    let cipher_alg = alg(AES256_CBC, Some(Any::encode_from(&OctetString::new(iv)?)?)).to_der()?;
    let mut data_oid = Vec::new();
    push_tlv(&mut data_oid, 0x06, ID_DATA.as_bytes());
    let mut ed_oid = Vec::new();
    push_tlv(&mut ed_oid, 0x06, ID_ENVELOPED_DATA.as_bytes());
    let ct_len = (content.len() / 16 + 1) * 16;
    let eci_len = data_oid.len() + cipher_alg.len() + header_len(ct_len) + ct_len;
    let ed_len = 3 + recipient_set.len() + header_len(eci_len) + eci_len;
    let explicit_len = header_len(ed_len) + ed_len;
    let ci_len = ed_oid.len() + header_len(explicit_len) + explicit_len;
    let total = header_len(ci_len) + ci_len;
    let mut out = Vec::with_capacity(total + 16);
    push_header(&mut out, 0x30, ci_len);
    out.extend_from_slice(&ed_oid);
    push_header(&mut out, 0xa0, explicit_len);
    push_header(&mut out, 0x30, ed_len);
    push_tlv(&mut out, 0x02, &[version]);
    out.extend_from_slice(&recipient_set);
    push_header(&mut out, 0x30, eci_len);
    out.extend_from_slice(&data_oid);
    out.extend_from_slice(&cipher_alg);
    // encryptedContent [0] IMPLICIT OCTET STRING.
    push_header(&mut out, 0x80, ct_len);
    let at = out.len();
    out.resize(at + ct_len + 16, 0);
    let mut crypter = openssl::symm::Crypter::new(
        Cipher::aes_256_cbc(),
        openssl::symm::Mode::Encrypt,
        &cek[..],
        Some(&iv),
    )
    .map_err(ossl("AES-256-CBC"))?;
    let mut n = crypter
        .update(content, &mut out[at..])
        .map_err(ossl("AES-256-CBC"))?;
    n += crypter
        .finalize(&mut out[at + n..])
        .map_err(ossl("AES-256-CBC"))?;
    if n != ct_len {
        return Err(Error::internal("AES-256-CBC wrote an unexpected length"));
    }
    out.truncate(at + ct_len);
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

/// A recipient as a message names it, for errors and listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientName {
    IssuerSerial {
        issuer: String,
        serial: String,
    },
    KeyId(String),
    /// A key agreement, KEK, password or other recipient: not one gpki opens.
    Unsupported(&'static str),
}

impl std::fmt::Display for RecipientName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecipientName::IssuerSerial { issuer, serial } => {
                write!(f, "certificate {serial} of `{issuer}`")
            }
            RecipientName::KeyId(k) => write!(f, "key id {k}"),
            RecipientName::Unsupported(kind) => write!(f, "a {kind} recipient"),
        }
    }
}

/// An EnvelopedData as read: its recipients decoded, its ciphertext borrowed
/// from the message (a megabyte document is not copied to be decrypted).
struct Envelope<'a> {
    recipients: RecipientInfos,
    content_enc_alg: AlgorithmIdentifierOwned,
    encrypted: Option<&'a [u8]>,
}

fn enveloped(der: &[u8]) -> Result<Envelope<'_>> {
    use gpki_pki::tlv::{self, Reader};
    let ci = tlv::only(der, 0x30, "EnvelopedData: not a CMS ContentInfo")?;
    let mut r = Reader::new(ci.value);
    let ct = r.expect(0x06, "EnvelopedData: ContentInfo contentType")?;
    let content_type = ObjectIdentifier::from_bytes(ct.value)
        .map_err(|e| malformed(format!("content type ({e})")))?;
    if content_type == ID_AUTH_ENVELOPED_DATA {
        return Err(Error::policy(
            "AuthEnvelopedData is not supported; send EnvelopedData (openssl cms -encrypt)",
        ));
    }
    if content_type != ID_ENVELOPED_DATA {
        return Err(malformed(format!(
            "content type {content_type} is not id-envelopedData"
        )));
    }
    let explicit = r.expect(0xa0, "EnvelopedData: ContentInfo content")?;
    let ed = tlv::only(explicit.value, 0x30, "EnvelopedData")?;
    let mut r = Reader::new(ed.value);
    r.expect(0x02, "EnvelopedData version")?;
    r.optional(0xa0, "EnvelopedData originatorInfo")?;
    let set = r.expect(0x31, "EnvelopedData recipientInfos")?;
    let mut count = Reader::new(set.value);
    let mut n = 0;
    while !count.is_empty() {
        count.next("EnvelopedData recipientInfo")?;
        n += 1;
        if n > MAX_RECIPIENTS {
            return Err(malformed(format!(
                "more than {MAX_RECIPIENTS} recipients; at most {MAX_RECIPIENTS} are read"
            )));
        }
    }
    let recipients = RecipientInfos::from_der(set.raw)
        .map_err(|e| malformed(format!("recipientInfos cannot be decoded ({e})")))?;
    let eci = r.expect(0x30, "EnvelopedData encryptedContentInfo")?;
    let mut er = Reader::new(eci.value);
    er.expect(0x06, "EnvelopedData encrypted contentType")?;
    let alg_tlv = er.expect(0x30, "EnvelopedData contentEncryptionAlgorithm")?;
    let content_enc_alg = AlgorithmIdentifierOwned::from_der(alg_tlv.raw)
        .map_err(|e| malformed(format!("contentEncryptionAlgorithm ({e})")))?;
    let encrypted = match er.peek_tag() {
        None => None,
        Some(0x80) => Some(er.next("EnvelopedData encryptedContent")?.value),
        Some(0xa0) => {
            return Err(malformed(
                "the content is in BER chunks (openssl cms -stream); gpki reads DER",
            ))
        }
        Some(t) => return Err(malformed(format!("encryptedContent has tag {t:#04x}"))),
    };
    Ok(Envelope {
        recipients,
        content_enc_alg,
        encrypted,
    })
}

fn name_of(info: &RecipientInfo) -> RecipientName {
    match info {
        RecipientInfo::Ktri(k) => match &k.rid {
            RecipientIdentifier::IssuerAndSerialNumber(is) => RecipientName::IssuerSerial {
                issuer: is.issuer.to_string(),
                serial: hex::encode_upper(is.serial_number.as_bytes()),
            },
            RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                RecipientName::KeyId(hex::encode(ski.0.as_bytes()))
            }
        },
        RecipientInfo::Kari(_) => RecipientName::Unsupported("key agreement (ECDH)"),
        RecipientInfo::Kekri(_) => RecipientName::Unsupported("KEK"),
        RecipientInfo::Pwri(_) => RecipientName::Unsupported("password"),
        RecipientInfo::Ori(_) => RecipientName::Unsupported("other"),
    }
}

/// The recipients a sealed message names.
pub fn recipients(der: &[u8]) -> Result<Vec<RecipientName>> {
    Ok(enveloped(der)?.recipients.0.iter().map(name_of).collect())
}

fn digest_of(oid: ObjectIdentifier) -> Result<&'static MdRef> {
    Ok(match oid {
        ID_SHA1 => Md::sha1(),
        ID_SHA256 => Md::sha256(),
        ID_SHA384 => Md::sha384(),
        ID_SHA512 => Md::sha512(),
        other => return Err(Error::policy(format!("OAEP hash {other} is not supported"))),
    })
}

/// Every way a message fails to open with a key is one error: which step failed
/// (key transport, key length, content padding) is not told, so an opener is no
/// padding oracle.
fn does_not_open() -> Error {
    Error::new(
        ErrorKind::BadSignature,
        "the message does not open with this key (another recipient's key, or a damaged message)",
    )
}

/// Decrypts the content-encryption key of one KeyTransRecipientInfo with `key`.
fn unwrap_cek<T: HasPrivate>(
    k: &KeyTransRecipientInfo,
    key: &PKeyRef<T>,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut ctx = PkeyCtx::new(key).map_err(ossl("RSA decryption"))?;
    ctx.decrypt_init().map_err(ossl("RSA decryption"))?;
    match k.key_enc_alg.oid {
        RSA_ENCRYPTION => ctx
            .set_rsa_padding(Padding::PKCS1)
            .map_err(ossl("RSA padding"))?,
        ID_RSAES_OAEP => {
            let params: OaepParams = match &k.key_enc_alg.parameters {
                Some(p) => p
                    .decode_as()
                    .map_err(|e| malformed(format!("RSAES-OAEP parameters ({e})")))?,
                None => OaepParams {
                    hash: None,
                    mask_gen: None,
                    p_source: None,
                },
            };
            let hash = digest_of(params.hash.map(|h| h.oid).unwrap_or(ID_SHA1))?;
            let mgf = match params.mask_gen {
                None => Md::sha1(),
                Some(m) if m.oid == ID_MGF1 => {
                    let inner: AlgorithmIdentifierOwned = m
                        .parameters
                        .ok_or_else(|| malformed("MGF1 without its hash"))?
                        .decode_as()
                        .map_err(|e| malformed(format!("MGF1 hash ({e})")))?;
                    digest_of(inner.oid)?
                }
                Some(m) => {
                    return Err(Error::policy(format!(
                        "mask generation {} is not supported",
                        m.oid
                    )))
                }
            };
            if let Some(p) = params.p_source {
                // Only the empty label (pSpecifiedEmpty) is used by anyone.
                let empty = p.oid == ID_P_SPECIFIED
                    && p.parameters
                        .as_ref()
                        .and_then(|a| a.decode_as::<OctetString>().ok())
                        .is_some_and(|o| o.as_bytes().is_empty());
                if !empty {
                    return Err(Error::policy("an RSAES-OAEP label is not supported"));
                }
            }
            ctx.set_rsa_padding(Padding::PKCS1_OAEP)
                .and_then(|_| ctx.set_rsa_oaep_md(hash))
                .and_then(|_| ctx.set_rsa_mgf1_md(mgf))
                .map_err(ossl("RSA-OAEP"))?;
        }
        other => {
            return Err(Error::policy(format!(
                "key transport {other} is not supported (RSA PKCS#1 v1.5 or RSAES-OAEP)"
            )))
        }
    }
    let mut out = Zeroizing::new(Vec::new());
    ctx.decrypt_to_vec(k.enc_key.as_bytes(), &mut out)
        .map_err(|_| does_not_open())?;
    Ok(out)
}

/// Opens a sealed message with `key`. With `cert` (the key's certificate), the
/// recipient named by its issuer and serial (or key id) is used; without, the one
/// named by the key's key identifier, else each key-transport recipient in turn.
/// The plaintext is zeroed when dropped: what gpki seals this way are private keys.
pub fn open<T: HasPrivate>(
    der: &[u8],
    key: &PKeyRef<T>,
    cert: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>> {
    open_document(der, key, cert).map(Zeroizing::new)
}

/// [`open`] for a document: the plaintext is the caller's to keep or write, and
/// is not zeroed on drop (zeroize's volatile writes cost a megabyte document a
/// fifth of its decryption time; docs/benchmarks.md, "Standard API").
pub fn open_document<T: HasPrivate>(
    der: &[u8],
    key: &PKeyRef<T>,
    cert: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let data = enveloped(der)?;
    if key.rsa().is_err() {
        return Err(Error::policy(
            "only RSA keys open messages here (key transport)",
        ));
    }
    let own_id = key_identifier(&key.public_key_to_der().map_err(ossl("public key"))?)?;
    let cert = cert
        .map(|d| {
            Certificate::from_der(d).map_err(|e| Error::malformed(format!("certificate: {e}")))
        })
        .transpose()?;
    let ktris: Vec<&KeyTransRecipientInfo> = data
        .recipients
        .0
        .iter()
        .filter_map(|i| match i {
            RecipientInfo::Ktri(k) => Some(k),
            _ => None,
        })
        .collect();
    let named = |k: &KeyTransRecipientInfo| match (&k.rid, &cert) {
        (RecipientIdentifier::IssuerAndSerialNumber(is), Some(c)) => {
            is.issuer == c.tbs_certificate.issuer
                && is.serial_number == c.tbs_certificate.serial_number
        }
        (RecipientIdentifier::SubjectKeyIdentifier(ski), _) => {
            ski.0.as_bytes() == own_id.as_slice()
        }
        (RecipientIdentifier::IssuerAndSerialNumber(_), None) => false,
    };
    let chosen: Vec<&KeyTransRecipientInfo> = match ktris.iter().find(|k| named(k)) {
        Some(k) => vec![k],
        // No certificate given, or none named: try each (what `openssl cms
        // -decrypt` does without -recip).
        None if cert.is_none() => ktris.clone(),
        None => {
            let names: Vec<String> = data
                .recipients
                .0
                .iter()
                .map(|i| name_of(i).to_string())
                .collect();
            return Err(Error::not_found(format!(
                "the message is not sealed to this certificate; it names {}",
                names.join("; ")
            )));
        }
    };
    if chosen.is_empty() {
        let names: Vec<String> = data
            .recipients
            .0
            .iter()
            .map(|i| name_of(i).to_string())
            .collect();
        return Err(Error::policy(format!(
            "the message has no key-transport recipient gpki can open; it names {}",
            names.join("; ")
        )));
    }
    let mut last = None;
    let mut cek = None;
    for k in chosen {
        match unwrap_cek(k, key) {
            Ok(c) => {
                cek = Some(c);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let cek = match (cek, last) {
        (Some(c), _) => c,
        (None, Some(e)) => return Err(e),
        (None, None) => unreachable!("at least one recipient was tried"),
    };
    let cipher = match data.content_enc_alg.oid {
        AES128_CBC => Cipher::aes_128_cbc(),
        AES192_CBC => Cipher::aes_192_cbc(),
        AES256_CBC => Cipher::aes_256_cbc(),
        // Read, never written: OpenSSL's default when no cipher is named.
        DES_EDE3_CBC => Cipher::des_ede3_cbc(),
        other => {
            return Err(Error::policy(format!(
                "content encryption {other} is not supported (AES-CBC, or DES-EDE3-CBC to read)"
            )))
        }
    };
    let iv: OctetString = data
        .content_enc_alg
        .parameters
        .as_ref()
        .ok_or_else(|| malformed("CBC without its IV"))?
        .decode_as()
        .map_err(|e| malformed(format!("CBC IV ({e})")))?;
    if Some(iv.as_bytes().len()) != cipher.iv_len() || cek.len() != cipher.key_len() {
        return Err(does_not_open());
    }
    let body = data
        .encrypted
        .ok_or_else(|| malformed("the content is detached; gpki opens only enveloped content"))?;
    let plain = openssl::symm::decrypt(cipher, &cek, Some(iv.as_bytes()), body)
        .map_err(|_| does_not_open())?;
    Ok(plain)
}

/// SHA-256 of `bytes`, hex: how the archive names what it holds.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(openssl::hash::hash(MessageDigest::sha256(), bytes).expect("SHA-256"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa() -> PKey<openssl::pkey::Private> {
        PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
    }

    #[test]
    fn sealed_to_a_key_opens_with_it_and_not_with_another() {
        let (a, b) = (rsa(), rsa());
        let spki = a.public_key_to_der().unwrap();
        let sealed = seal(b"km key", &[Recipient::PublicKey(&spki)]).unwrap();
        assert_eq!(&open(&sealed, &a, None).unwrap()[..], b"km key");
        let e = open(&sealed, &b, None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadSignature, "{e}");
        assert_eq!(
            recipients(&sealed).unwrap(),
            vec![RecipientName::KeyId(hex::encode(
                key_identifier(&spki).unwrap()
            ))]
        );
    }

    #[test]
    fn refuses_ec_keys_small_keys_and_garbage() {
        let ec = PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let e = seal(
            b"x",
            &[Recipient::PublicKey(&ec.public_key_to_der().unwrap())],
        )
        .unwrap_err();
        assert!(e.detail.contains("not RSA"), "{e}");
        let small = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
        let e = seal(
            b"x",
            &[Recipient::PublicKey(&small.public_key_to_der().unwrap())],
        )
        .unwrap_err();
        assert!(e.detail.contains("1024 bits"), "{e}");
        let e = open(b"\x30\x03\x02\x01\x00", &rsa(), None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed, "{e}");
    }
}
