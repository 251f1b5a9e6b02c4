//! Keys as the credential formats name them: a holder's or signer's EC public key
//! as a JWK (RFC 7517) and as a COSE_Key (RFC 9052), the JOSE/COSE algorithm of a
//! key, signatures in their fixed-length r‖s form, and the issuer's signing key with
//! its certificate chain.

use coset::iana;
use gpki_pki::{Error, KeyType, Result, Signer};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use serde_json::{json, Value};

use crate::b64;

/// The signature algorithms credentials use: ECDSA on the curve of the key, with the
/// hash of matching strength (RFC 7518 §3.4, RFC 9053 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Es384,
}

impl Alg {
    /// The algorithm of a key of this type; only P-256 and P-384 keys sign credentials.
    pub fn of(key_type: KeyType) -> Result<Alg> {
        match key_type {
            KeyType::EcP256 => Ok(Alg::Es256),
            KeyType::EcP384 => Ok(Alg::Es384),
            other => Err(Error::policy(format!(
                "a {other} key cannot sign credentials (P-256 or P-384 only)"
            ))),
        }
    }

    /// The JWS `alg` name.
    pub fn jose(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
        }
    }

    pub fn from_jose(name: &str) -> Option<Alg> {
        match name {
            "ES256" => Some(Alg::Es256),
            "ES384" => Some(Alg::Es384),
            _ => None,
        }
    }

    /// The COSE algorithm.
    pub fn cose(self) -> iana::Algorithm {
        match self {
            Alg::Es256 => iana::Algorithm::ES256,
            Alg::Es384 => iana::Algorithm::ES384,
        }
    }

    pub fn from_cose(alg: &coset::Algorithm) -> Option<Alg> {
        match alg {
            coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256) => Some(Alg::Es256),
            coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384) => Some(Alg::Es384),
            _ => None,
        }
    }

    /// Octets of one coordinate, and of r and of s.
    pub fn field_len(self) -> usize {
        match self {
            Alg::Es256 => 32,
            Alg::Es384 => 48,
        }
    }

    fn curve(self) -> Nid {
        match self {
            Alg::Es256 => Nid::X9_62_PRIME256V1,
            Alg::Es384 => Nid::SECP384R1,
        }
    }

    fn crv(self) -> &'static str {
        match self {
            Alg::Es256 => "P-256",
            Alg::Es384 => "P-384",
        }
    }
}

/// An EC public key: a holder's device key or a signer's key.
#[derive(Clone)]
pub struct PublicKey {
    alg: Alg,
    x: Vec<u8>,
    y: Vec<u8>,
    /// Decoded once: OpenSSL 3's DER decoders cost more than a signature check.
    ec: EcKey<Public>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("alg", &self.alg)
            .field("thumbprint", &self.thumbprint())
            .finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.alg == other.alg && self.x == other.x && self.y == other.y
    }
}

impl PublicKey {
    /// From a DER SubjectPublicKeyInfo (a P-256 or P-384 key; the point is checked to
    /// be on its curve).
    pub fn from_spki(spki: &[u8]) -> Result<PublicKey> {
        let alg = Alg::of(KeyType::of_spki(spki)?)?;
        let pkey = PKey::public_key_from_der(spki)
            .map_err(|_| Error::malformed("public key is not a valid SubjectPublicKeyInfo"))?;
        let ec = pkey
            .ec_key()
            .map_err(|_| Error::malformed("public key is not an EC key"))?;
        ec.check_key()
            .map_err(|_| Error::malformed("public key is not a point on its curve"))?;
        let (x, y) = coordinates(&ec, alg)?;
        Ok(PublicKey { alg, x, y, ec })
    }

    /// The key of a parsed certificate, without decoding DER again (P-256 or P-384;
    /// the point is checked to be on its curve).
    pub fn from_x509(cert: &openssl::x509::X509Ref) -> Result<PublicKey> {
        let pkey = cert
            .public_key()
            .map_err(|_| Error::malformed("certificate public key is not readable"))?;
        let ec = pkey
            .ec_key()
            .map_err(|_| Error::malformed("certificate public key is not an EC key"))?;
        let alg = match ec.group().curve_name() {
            Some(Nid::X9_62_PRIME256V1) => Alg::Es256,
            Some(Nid::SECP384R1) => Alg::Es384,
            _ => return Err(Error::malformed("certificate key is not P-256 or P-384")),
        };
        ec.check_key()
            .map_err(|_| Error::malformed("public key is not a point on its curve"))?;
        let (x, y) = coordinates(&ec, alg)?;
        Ok(PublicKey { alg, x, y, ec })
    }

    /// From a PEM or DER public key file's bytes (`PUBLIC KEY`), or a certificate's.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<PublicKey> {
        if let Ok(der) = gpki_pki::pem::decode(bytes, "PUBLIC KEY") {
            return PublicKey::from_spki(&der);
        }
        if let Ok(der) = gpki_pki::pem::decode(bytes, "CERTIFICATE") {
            return PublicKey::from_certificate(&der);
        }
        PublicKey::from_spki(bytes)
    }

    /// The key of a DER certificate.
    pub fn from_certificate(der: &[u8]) -> Result<PublicKey> {
        use der::Encode;
        let cert = gpki_pki::cert::decode(der)?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| Error::malformed(format!("certificate public key: {e}")))?;
        PublicKey::from_spki(&spki)
    }

    fn from_coordinates(alg: Alg, x: &[u8], y: &[u8]) -> Result<PublicKey> {
        if x.len() != alg.field_len() || y.len() != alg.field_len() {
            return Err(Error::malformed(format!(
                "{} key coordinates must be {} octets each",
                alg.crv(),
                alg.field_len()
            )));
        }
        let group = EcGroup::from_curve_name(alg.curve()).map_err(ossl)?;
        let bx = BigNum::from_slice(x).map_err(ossl)?;
        let by = BigNum::from_slice(y).map_err(ossl)?;
        let ec = EcKey::from_public_key_affine_coordinates(&group, &bx, &by)
            .map_err(|_| Error::malformed("key coordinates are not a point on the curve"))?;
        ec.check_key()
            .map_err(|_| Error::malformed("key coordinates are not a point on the curve"))?;
        Ok(PublicKey {
            alg,
            x: x.to_vec(),
            y: y.to_vec(),
            ec,
        })
    }

    /// From a JWK (`kty` EC, `crv` P-256 or P-384); private members are refused.
    pub fn from_jwk(jwk: &Value) -> Result<PublicKey> {
        let field = |name: &str| {
            jwk.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| Error::malformed(format!("JWK has no string member `{name}`")))
        };
        if field("kty")? != "EC" {
            return Err(Error::malformed("JWK kty is not EC"));
        }
        if jwk.get("d").is_some() {
            return Err(Error::malformed(
                "JWK carries a private key (`d`); only the public key belongs here",
            ));
        }
        let alg = match field("crv")? {
            "P-256" => Alg::Es256,
            "P-384" => Alg::Es384,
            other => {
                return Err(Error::malformed(format!(
                    "JWK crv {other} is not supported"
                )))
            }
        };
        let x = b64::decode(field("x")?).map_err(|e| e.context("JWK x"))?;
        let y = b64::decode(field("y")?).map_err(|e| e.context("JWK y"))?;
        PublicKey::from_coordinates(alg, &x, &y)
    }

    /// From a COSE_Key (kty EC2, crv P-256 or P-384).
    pub fn from_cose_key(key: &coset::CoseKey) -> Result<PublicKey> {
        use coset::cbor::value::Value as Cbor;
        use coset::{KeyType as Kty, Label, RegisteredLabel};
        if key.kty != RegisteredLabel::Assigned(iana::KeyType::EC2) {
            return Err(Error::malformed("COSE_Key kty is not EC2"));
        }
        let param = |label: i64| {
            key.params
                .iter()
                .find(|(l, _)| *l == Label::Int(label))
                .map(|(_, v)| v)
        };
        if param(iana::Ec2KeyParameter::D as i64).is_some() {
            return Err(Error::malformed(
                "COSE_Key carries a private key (d); only the public key belongs here",
            ));
        }
        let alg = match param(iana::Ec2KeyParameter::Crv as i64) {
            Some(Cbor::Integer(i)) if i128::from(*i) == iana::EllipticCurve::P_256 as i128 => {
                Alg::Es256
            }
            Some(Cbor::Integer(i)) if i128::from(*i) == iana::EllipticCurve::P_384 as i128 => {
                Alg::Es384
            }
            _ => return Err(Error::malformed("COSE_Key crv is not P-256 or P-384")),
        };
        let bytes = |label: iana::Ec2KeyParameter, name: &str| match param(label as i64) {
            Some(Cbor::Bytes(b)) => Ok(b.clone()),
            _ => Err(Error::malformed(format!(
                "COSE_Key has no byte string {name}"
            ))),
        };
        let _: Kty = key.kty.clone();
        PublicKey::from_coordinates(
            alg,
            &bytes(iana::Ec2KeyParameter::X, "x")?,
            &bytes(iana::Ec2KeyParameter::Y, "y")?,
        )
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> Result<Vec<u8>> {
        PKey::from_ec_key(self.ec.clone())
            .and_then(|p| p.public_key_to_der())
            .map_err(ossl)
    }

    /// The JWK: kty, crv, x, y.
    pub fn to_jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "crv": self.alg.crv(),
            "x": b64::encode(&self.x),
            "y": b64::encode(&self.y),
        })
    }

    /// The COSE_Key: kty EC2, crv, x, y.
    pub fn to_cose_key(&self) -> coset::CoseKey {
        let curve = match self.alg {
            Alg::Es256 => iana::EllipticCurve::P_256,
            Alg::Es384 => iana::EllipticCurve::P_384,
        };
        coset::CoseKeyBuilder::new_ec2_pub_key(curve, self.x.clone(), self.y.clone()).build()
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url): the required members in
    /// lexicographic order, no whitespace.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            self.alg.crv(),
            b64::encode(&self.x),
            b64::encode(&self.y)
        );
        b64::encode(&openssl::sha::sha256(canonical.as_bytes()))
    }

    /// Checks a JOSE/COSE signature (r‖s) over `message`. `Ok(false)`: it does not verify.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> Result<bool> {
        if alg != self.alg {
            return Ok(false);
        }
        let n = alg.field_len();
        if signature.len() != 2 * n {
            return Ok(false);
        }
        let sig = EcdsaSig::from_private_components(
            BigNum::from_slice(&signature[..n]).map_err(ossl)?,
            BigNum::from_slice(&signature[n..]).map_err(ossl)?,
        )
        .map_err(ossl)?;
        let digest = match alg {
            Alg::Es256 => openssl::sha::sha256(message).to_vec(),
            Alg::Es384 => openssl::sha::sha384(message).to_vec(),
        };
        Ok(sig.verify(&digest, &self.ec).unwrap_or(false))
    }
}

fn coordinates(ec: &EcKey<Public>, alg: Alg) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut ctx = BigNumContext::new().map_err(ossl)?;
    let bytes = ec
        .public_key()
        .to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)
        .map_err(ossl)?;
    let n = alg.field_len();
    if bytes.len() != 1 + 2 * n || bytes[0] != 4 {
        return Err(Error::malformed("EC point is not an uncompressed point"));
    }
    let _ = EcPoint::from_bytes(ec.group(), &bytes, &mut ctx).map_err(ossl)?;
    Ok((bytes[1..=n].to_vec(), bytes[1 + n..].to_vec()))
}

/// The extended key usages of a certificate (none without the extension).
pub fn extended_key_usages(
    cert: &x509_cert::Certificate,
) -> Result<Vec<const_oid::ObjectIdentifier>> {
    Ok(
        gpki_pki::cert::find_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>(
            &cert.tbs_certificate,
            const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE,
        )?
        .map(|(_, eku)| eku.0)
        .unwrap_or_default(),
    )
}

fn ossl(e: openssl::error::ErrorStack) -> Error {
    Error::internal(format!("OpenSSL: {e}"))
}

/// Signs `message` with `signer` and returns the JOSE/COSE form of the signature:
/// r and s, each left-padded to the curve's field length.
pub fn sign_raw(signer: &dyn Signer, alg: Alg, message: &[u8]) -> Result<Vec<u8>> {
    let hashed_as = match alg {
        Alg::Es256 => gpki_pki::SignatureAlgorithm::EcdsaSha256,
        Alg::Es384 => gpki_pki::SignatureAlgorithm::EcdsaSha384,
    };
    if signer.algorithm() != hashed_as {
        return Err(Error::policy(format!(
            "the key signs with {}, not the {} a {} signature needs",
            signer.algorithm(),
            hashed_as,
            alg.jose()
        )));
    }
    let der = signer.sign(message)?;
    let sig = EcdsaSig::from_der(&der).map_err(ossl)?;
    let n = alg.field_len() as i32;
    let mut out = sig.r().to_vec_padded(n).map_err(ossl)?;
    out.extend(sig.s().to_vec_padded(n).map_err(ossl)?);
    Ok(out)
}

/// The issuer's signing key with its certificate chain (leaf first, the trust
/// anchor left out): what signs credentials or status lists.
#[derive(Clone)]
pub struct IssuerKey {
    signer: std::sync::Arc<dyn Signer>,
    alg: Alg,
    chain: Vec<Vec<u8>>,
    kid: String,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("alg", &self.alg)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl IssuerKey {
    /// Pairs a key with its chain. The leaf certificate must hold the key, carry
    /// `purpose` among its extended key usages and be within its validity now.
    /// A self-signed certificate at the end of the chain (the trust anchor) is left
    /// out: a verifier has its own (ISO/IEC 18013-5 leaves the IACA out of x5chain).
    pub fn new(
        signer: std::sync::Arc<dyn Signer>,
        mut chain: Vec<Vec<u8>>,
        purpose: const_oid::ObjectIdentifier,
        what: &str,
    ) -> Result<IssuerKey> {
        use der::Encode;
        if chain.len() > 1 {
            let last = gpki_pki::cert::decode(chain.last().expect("two or more"))?;
            if last.tbs_certificate.subject == last.tbs_certificate.issuer {
                chain.pop();
            }
        }
        let leaf = chain
            .first()
            .ok_or_else(|| Error::malformed(format!("the {what} certificate chain is empty")))?;
        let cert = gpki_pki::cert::decode(leaf)?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| Error::malformed(format!("{what} certificate public key: {e}")))?;
        if spki != signer.public_key_der() {
            return Err(Error::policy(format!(
                "the {what} key does not match its certificate"
            )));
        }
        let alg = Alg::of(KeyType::of_spki(&spki)?)?;
        if !extended_key_usages(&cert)?.contains(&purpose) {
            return Err(Error::policy(format!(
                "the {what} certificate does not carry the extended key usage {purpose}"
            )));
        }
        let now = gpki_pki::time::now();
        let v = &cert.tbs_certificate.validity;
        if now < gpki_pki::time::unix_seconds(&v.not_before)
            || now > gpki_pki::time::unix_seconds(&v.not_after)
        {
            return Err(Error::policy(format!(
                "the {what} certificate is not within its validity now"
            )));
        }
        let kid = PublicKey::from_spki(&spki)?.thumbprint();
        Ok(IssuerKey {
            signer,
            alg,
            chain,
            kid,
        })
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The key's RFC 7638 thumbprint: the `kid` of its JWS headers and of its JWK in
    /// the issuer's metadata and DID document.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn signer(&self) -> &std::sync::Arc<dyn Signer> {
        &self.signer
    }

    /// DER certificates, leaf first.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The leaf certificate's URI subjectAltNames (an issuer's identifiers).
    pub fn uri_sans(&self) -> Result<Vec<String>> {
        let cert = gpki_pki::cert::decode(&self.chain[0])?;
        Ok(gpki_pki::cert::san_entries(&cert.tbs_certificate)?
            .into_iter()
            .filter_map(|s| match s {
                gpki_pki::cert::SanEntry::Uri(u) => Some(u),
                _ => None,
            })
            .collect())
    }

    /// The leaf certificate's notAfter, in Unix seconds.
    pub fn not_after(&self) -> Result<i64> {
        let cert = gpki_pki::cert::decode(&self.chain[0])?;
        Ok(gpki_pki::time::unix_seconds(
            &cert.tbs_certificate.validity.not_after,
        ))
    }

    pub fn public_key(&self) -> Result<PublicKey> {
        PublicKey::from_spki(self.signer.public_key_der())
    }

    /// A JOSE/COSE signature (r‖s) over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        sign_raw(self.signer.as_ref(), self.alg, message)
    }
}

/// The holder's device key, which proves possession in a presentation (the SD-JWT
/// key binding JWT, the mdoc's DeviceAuth signature). It stays with the holder: gpki
/// records only its public key's thumbprint.
#[derive(Clone)]
pub struct HolderKey {
    signer: std::sync::Arc<dyn Signer>,
    alg: Alg,
    public: PublicKey,
}

impl std::fmt::Debug for HolderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HolderKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl HolderKey {
    pub fn new(signer: std::sync::Arc<dyn Signer>) -> Result<HolderKey> {
        let public = PublicKey::from_spki(signer.public_key_der())?;
        Ok(HolderKey {
            alg: public.alg(),
            signer,
            public,
        })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    pub(crate) fn signer(&self) -> &std::sync::Arc<dyn Signer> {
        &self.signer
    }

    /// A JOSE/COSE signature (r‖s) over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        sign_raw(self.signer.as_ref(), self.alg, message)
    }
}
