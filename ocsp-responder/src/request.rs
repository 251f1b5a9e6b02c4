//! Decoding OCSP requests (RFC 6960 §4.1) and the nonce rules of RFC 8954.

use const_oid::ObjectIdentifier;

/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
pub const ID_PKIX_OCSP_NONCE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// RFC 8954 §2.1: a nonce is 1 to 32 octets.
pub const MAX_NONCE_OCTETS: usize = 32;

/// CertID hash algorithms the responder matches issuers by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub const ALL: [HashAlg; 4] = [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    pub fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
        Some(match oid.to_string().as_str() {
            "1.3.14.3.2.26" => HashAlg::Sha1,
            "2.16.840.1.101.3.4.2.1" => HashAlg::Sha256,
            "2.16.840.1.101.3.4.2.2" => HashAlg::Sha384,
            "2.16.840.1.101.3.4.2.3" => HashAlg::Sha512,
            _ => return None,
        })
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha1 => openssl::sha::sha1(data).to_vec(),
            HashAlg::Sha256 => openssl::sha::sha256(data).to_vec(),
            HashAlg::Sha384 => openssl::sha::sha384(data).to_vec(),
            HashAlg::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }
}

/// One CertID of a request, borrowed from the request body.
#[derive(Debug, Clone)]
pub struct RequestedCert<'a> {
    /// The CertID's DER, echoed in the SingleResponse.
    pub der: &'a [u8],
    /// `None` for a hash algorithm the responder does not know.
    pub hash: Option<HashAlg>,
    pub name_hash: &'a [u8],
    pub key_hash: &'a [u8],
    /// The serial's magnitude (no leading zero octets).
    pub serial: &'a [u8],
}

/// A decoded request.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    pub certs: Vec<RequestedCert<'a>>,
    /// The nonce Extension's DER, to echo in the response.
    pub nonce: Option<&'a [u8]>,
}

/// Why a request is refused as malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

fn bad(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// One DER element: its tag octet, its value, and the whole encoding.
struct Tlv<'a> {
    tag: u8,
    value: &'a [u8],
    whole: &'a [u8],
}

/// Walks the DER elements of one constructed value, in order. Lengths follow
/// DER's rules (definite, minimal), checked by the `der` crate.
struct Walker<'a> {
    input: &'a [u8],
    reader: der::SliceReader<'a>,
}

impl<'a> Walker<'a> {
    fn new(input: &'a [u8]) -> Result<Walker<'a>, Malformed> {
        Ok(Walker {
            input,
            reader: der::SliceReader::new(input).map_err(|e| bad(format!("{e}")))?,
        })
    }

    fn done(&self) -> bool {
        der::Reader::is_finished(&self.reader)
    }

    fn peek(&self) -> Option<u8> {
        der::Reader::peek_byte(&self.reader)
    }

    fn next(&mut self, what: &str) -> Result<Tlv<'a>, Malformed> {
        use der::Reader;
        let start = usize::try_from(self.reader.position()).map_err(|_| bad("length"))?;
        let header =
            der::Header::decode(&mut self.reader).map_err(|e| bad(format!("{what}: {e}")))?;
        let value = self
            .reader
            .read_slice(header.length)
            .map_err(|e| bad(format!("{what}: {e}")))?;
        let end = usize::try_from(self.reader.position()).map_err(|_| bad("length"))?;
        Ok(Tlv {
            tag: self.input[start],
            value,
            whole: &self.input[start..end],
        })
    }

    fn expect(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, Malformed> {
        let t = self.next(what)?;
        if t.tag != tag {
            return Err(bad(format!(
                "{what}: expected tag {tag:#04x}, found {:#04x}",
                t.tag
            )));
        }
        Ok(t)
    }

    fn finish(&self, what: &str) -> Result<(), Malformed> {
        if self.done() {
            Ok(())
        } else {
            Err(bad(format!("{what}: unexpected trailing data")))
        }
    }
}

use der::Decode as _;

/// Decodes a DER OCSPRequest (RFC 6960 §4.1.1) without copying: CertIDs and the
/// nonce are slices of `body`. The request signature, if any, is not required and
/// not checked (RFC 6960 §4.1.2 leaves that to the responder's policy).
pub fn parse(body: &[u8], max_certs: usize) -> Result<Parsed<'_>, Malformed> {
    let mut top = Walker::new(body)?;
    let request = top.expect(0x30, "OCSPRequest")?;
    top.finish("OCSPRequest")?;
    let mut req = Walker::new(request.value)?;
    let tbs = req.expect(0x30, "tbsRequest")?;
    if !req.done() {
        req.expect(0xa0, "optionalSignature")?;
    }
    req.finish("OCSPRequest")?;

    let mut t = Walker::new(tbs.value)?;
    if t.peek() == Some(0xa0) {
        let v = t.next("version")?;
        if v.value != [0x02, 0x01, 0x00] {
            return Err(bad("version: only v1 (0) is defined"));
        }
    }
    if t.peek() == Some(0xa1) {
        t.next("requestorName")?;
    }
    let list = t.expect(0x30, "requestList")?;
    let mut nonce = None;
    if !t.done() {
        let exts = t.expect(0xa2, "requestExtensions")?;
        nonce = find_nonce(exts.value)?;
    }
    t.finish("tbsRequest")?;

    let mut certs = Vec::with_capacity(1);
    let mut l = Walker::new(list.value)?;
    while !l.done() {
        if certs.len() == max_certs {
            return Err(bad(format!(
                "request lists more than {max_certs} certificates, the most answered at once"
            )));
        }
        let r = l.expect(0x30, "Request")?;
        let mut rw = Walker::new(r.value)?;
        let id = rw.expect(0x30, "CertID")?;
        if !rw.done() {
            rw.expect(0xa0, "singleRequestExtensions")?;
        }
        rw.finish("Request")?;
        certs.push(cert_id(id)?);
    }
    if certs.is_empty() {
        return Err(bad("request lists no certificates"));
    }
    Ok(Parsed { certs, nonce })
}

fn cert_id(id: Tlv<'_>) -> Result<RequestedCert<'_>, Malformed> {
    let mut w = Walker::new(id.value)?;
    let alg = w.expect(0x30, "hashAlgorithm")?;
    let name_hash = w.expect(0x04, "issuerNameHash")?.value;
    let key_hash = w.expect(0x04, "issuerKeyHash")?.value;
    let serial = w.expect(0x02, "serialNumber")?.value;
    w.finish("CertID")?;
    let mut a = Walker::new(alg.value)?;
    let oid = a.expect(0x06, "hashAlgorithm")?;
    let hash = ObjectIdentifier::from_bytes(oid.value)
        .ok()
        .and_then(|o| HashAlg::from_oid(&o));
    if serial.is_empty() {
        return Err(bad("serialNumber is empty"));
    }
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    Ok(RequestedCert {
        der: id.whole,
        hash,
        name_hash,
        key_hash,
        serial: &serial[start..],
    })
}

/// The nonce extension of `Extensions` (its whole DER), checked against RFC 8954.
fn find_nonce(exts: &[u8]) -> Result<Option<&[u8]>, Malformed> {
    let mut outer = Walker::new(exts)?;
    let seq = outer.expect(0x30, "requestExtensions")?;
    outer.finish("requestExtensions")?;
    let mut w = Walker::new(seq.value)?;
    let mut found = None;
    while !w.done() {
        let ext = w.expect(0x30, "Extension")?;
        let mut e = Walker::new(ext.value)?;
        let oid = e.expect(0x06, "extnID")?;
        if e.peek() == Some(0x01) {
            e.next("critical")?;
        }
        let value = e.expect(0x04, "extnValue")?.value;
        e.finish("Extension")?;
        if oid.value != ID_PKIX_OCSP_NONCE.as_bytes() {
            continue;
        }
        // Nonce ::= OCTET STRING inside extnValue (RFC 8954); some clients put the
        // raw octets there, which then count as the nonce.
        let len = match der::asn1::OctetStringRef::from_der(value) {
            Ok(inner) => inner.as_bytes().len(),
            Err(_) => value.len(),
        };
        if len == 0 || len > MAX_NONCE_OCTETS {
            return Err(bad(format!(
                "nonce is {len} octets; RFC 8954 allows 1 to {MAX_NONCE_OCTETS}"
            )));
        }
        found = Some(ext.whole);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `openssl ocsp -reqout` writes for one certificate, with a nonce.
    const OPENSSL_REQUEST: &str = "30783076304f304d304b300906052b0e03021a05000414926ea753acb31daac187479004974b802b2711b304143c81607a67f2aec38dd36554c7162fb3604921af021200e3a19e0c9a3e2b3a1f1c0a7d6b9ff0e7f6a2233021301f06092b060105050730010204120410d1adb3e241102393abd0eea277678b61";

    #[test]
    fn decodes_like_x509_ocsp() {
        use der::Encode;
        let body = hex::decode(OPENSSL_REQUEST).unwrap();
        let p = parse(&body, 4).unwrap();
        let theirs = x509_ocsp::OcspRequest::from_der(&body).unwrap();
        let id = &theirs.tbs_request.request_list[0].req_cert;
        assert_eq!(p.certs.len(), 1);
        assert_eq!(p.certs[0].der, id.to_der().unwrap().as_slice());
        assert_eq!(p.certs[0].hash, Some(HashAlg::Sha1));
        assert_eq!(p.certs[0].name_hash, id.issuer_name_hash.as_bytes());
        assert_eq!(p.certs[0].serial, &id.serial_number.as_bytes()[1..]);
        let ext = &theirs.tbs_request.request_extensions.as_ref().unwrap()[0];
        assert_eq!(p.nonce.unwrap(), ext.to_der().unwrap().as_slice());
        // Every truncation is refused, never a panic.
        for n in 0..body.len() {
            assert!(parse(&body[..n], 4).is_err(), "{n}");
        }
        assert!(parse(&body, 0).is_err(), "more certificates than allowed");
    }

    #[test]
    fn garbage_is_malformed() {
        for body in [
            &b""[..],
            b"\x30\x03\x02\x01\x00",
            b"hello world",
            &[0x30, 0x80, 0, 0],
        ] {
            assert!(parse(body, 16).is_err(), "{body:?}");
        }
    }
}
