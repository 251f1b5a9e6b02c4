//! IETF OAuth Token Status List (draft-ietf-oauth-status-list): a bit string with a
//! status per credential, zlib-compressed (RFC 1950, DEFLATE at its best level), signed
//! as a JWT (`statuslist+jwt`) and as a CWT (`application/statuslist+cwt`).
//!
//! A verifier fetches the whole list and reads the credential's index itself, so the
//! list's server cannot tell which credential was checked.

use std::io::{Read, Write};

use coset::cbor::value::Value as Cbor;
use coset::{CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use gpki_pki::{Error, Result};
use serde_json::json;

use crate::b64;
use crate::keys::IssuerKey;

/// The status of a valid credential.
pub const VALID: u8 = 0x00;
/// A revoked credential: it does not come back.
pub const INVALID: u8 = 0x01;
/// A suspended credential (needs 2 bits per entry).
pub const SUSPENDED: u8 = 0x02;

pub const JWT_TYP: &str = "statuslist+jwt";
pub const CWT_TYP: &str = "application/statuslist+cwt";
/// CWT claim keys (draft §6.2): sub, exp, iat, ttl, status_list.
pub(crate) const CWT_SUB: i64 = 2;
pub(crate) const CWT_EXP: i64 = 4;
pub(crate) const CWT_IAT: i64 = 6;
pub(crate) const CWT_TTL: i64 = 65534;
pub(crate) const CWT_STATUS_LIST: i64 = 65533;
/// COSE header parameter typ (RFC 9596).
pub(crate) const COSE_TYP: i64 = 16;

/// The most bytes a decompressed list may have (2^27 one-bit entries): a bound on
/// what a hostile `lst` can make a verifier allocate.
pub const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;

/// A status list: `bits` (1, 2, 4 or 8) per entry, entry 0 in the least significant
/// bits of byte 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList {
    bits: u8,
    bytes: Vec<u8>,
}

impl StatusList {
    /// A list of `size` entries, all VALID.
    pub fn new(size: u64, bits: u8) -> Result<StatusList> {
        check_bits(bits)?;
        let per_byte = 8 / u64::from(bits);
        let len = size.div_ceil(per_byte);
        if len as usize > MAX_LIST_BYTES {
            return Err(Error::policy(format!(
                "a status list of {size} entries of {bits} bits is larger than {MAX_LIST_BYTES} bytes"
            )));
        }
        Ok(StatusList {
            bits,
            bytes: vec![0; len as usize],
        })
    }

    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// How many entries the list holds.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64 * u64::from(8 / self.bits)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn locate(&self, idx: u64) -> Option<(usize, u32, u8)> {
        let per_byte = u64::from(8 / self.bits);
        let byte = usize::try_from(idx / per_byte).ok()?;
        if byte >= self.bytes.len() {
            return None;
        }
        let shift = ((idx % per_byte) * u64::from(self.bits)) as u32;
        let mask = ((1u16 << self.bits) - 1) as u8;
        Some((byte, shift, mask))
    }

    /// The status at `idx`; `None` past the end of the list.
    pub fn get(&self, idx: u64) -> Option<u8> {
        let (byte, shift, mask) = self.locate(idx)?;
        Some((self.bytes[byte] >> shift) & mask)
    }

    /// Sets the status at `idx`.
    pub fn set(&mut self, idx: u64, status: u8) -> Result<()> {
        let (byte, shift, mask) = self.locate(idx).ok_or_else(|| {
            Error::policy(format!("index {idx} is past the end of the status list"))
        })?;
        if status > mask {
            return Err(Error::policy(format!(
                "status {status} does not fit {} bits",
                self.bits
            )));
        }
        self.bytes[byte] = (self.bytes[byte] & !(mask << shift)) | (status << shift);
        Ok(())
    }

    /// The `lst` value: the bytes, zlib-compressed at the best level.
    pub fn compressed(&self) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail.
        z.write_all(&self.bytes).expect("zlib into a Vec");
        z.finish().expect("zlib into a Vec")
    }

    /// The list from its `lst` and `bits`, refusing more than [`MAX_LIST_BYTES`].
    pub fn from_compressed(lst: &[u8], bits: u8) -> Result<StatusList> {
        check_bits(bits)?;
        let mut bytes = Vec::new();
        flate2::read::ZlibDecoder::new(lst)
            .take(MAX_LIST_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::malformed(format!("status list `lst` is not zlib data: {e}")))?;
        if bytes.len() > MAX_LIST_BYTES {
            return Err(Error::malformed(format!(
                "status list decompresses to more than {MAX_LIST_BYTES} bytes"
            )));
        }
        Ok(StatusList { bits, bytes })
    }
}

fn check_bits(bits: u8) -> Result<()> {
    if matches!(bits, 1 | 2 | 4 | 8) {
        Ok(())
    } else {
        Err(Error::malformed(format!(
            "status list bits is {bits}; it must be 1, 2, 4 or 8"
        )))
    }
}

/// When a status list token was made and how long it may be used, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issued {
    pub iat: i64,
    pub exp: i64,
    /// How long a verifier may keep it before fetching it again (`ttl`).
    pub ttl: i64,
}

/// The Status List Token as a JWT (draft §5.1).
pub fn jwt(list: &StatusList, uri: &str, at: Issued, key: &IssuerKey) -> Result<String> {
    let payload = json!({
        "sub": uri,
        "iat": at.iat,
        "exp": at.exp,
        "ttl": at.ttl,
        "status_list": { "bits": list.bits, "lst": b64::encode(&list.compressed()) },
    });
    crate::jose::sign(&payload, JWT_TYP, key)
}

/// The Status List Token as a CWT (draft §5.2): a tagged COSE_Sign1, typ protected.
pub fn cwt(list: &StatusList, uri: &str, at: Issued, key: &IssuerKey) -> Result<Vec<u8>> {
    let claims = Cbor::Map(vec![
        (Cbor::Integer(CWT_SUB.into()), Cbor::Text(uri.to_string())),
        (Cbor::Integer(CWT_IAT.into()), Cbor::Integer(at.iat.into())),
        (Cbor::Integer(CWT_EXP.into()), Cbor::Integer(at.exp.into())),
        (Cbor::Integer(CWT_TTL.into()), Cbor::Integer(at.ttl.into())),
        (
            Cbor::Integer(CWT_STATUS_LIST.into()),
            Cbor::Map(vec![
                (Cbor::Text("bits".into()), Cbor::Integer(list.bits.into())),
                (Cbor::Text("lst".into()), Cbor::Bytes(list.compressed())),
            ]),
        ),
    ]);
    let mut s = CoseSign1Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(key.alg().cose())
                .value(COSE_TYP, Cbor::Text(CWT_TYP.into()))
                .build(),
        )
        .unprotected(
            HeaderBuilder::new()
                .value(crate::mdoc::X5CHAIN, crate::mdoc::x5chain(key.chain()))
                .build(),
        )
        .payload(crate::mdoc::encode(&claims))
        .build();
    s.signature = key.sign(&s.tbs_data(b""))?;
    s.to_tagged_vec()
        .map_err(|e| Error::internal(format!("COSE_Sign1: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_pack_least_significant_bits_first() {
        // draft §4.1's example: bits 1, statuses of 0..16 → bytes B9 A3.
        let mut l = StatusList::new(16, 1).unwrap();
        for (i, s) in [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
            .into_iter()
            .enumerate()
        {
            l.set(i as u64, s).unwrap();
        }
        assert_eq!(l.bytes, [0xB9, 0xA3]);
        let mut l2 = StatusList::new(12, 2).unwrap();
        for (i, s) in [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3].into_iter().enumerate() {
            l2.set(i as u64, s).unwrap();
        }
        // draft §4.1's 2-bit example: C9 44 F9.
        assert_eq!(l2.bytes, [0xC9, 0x44, 0xF9]);
        assert_eq!(l2.get(3), Some(3));
        assert_eq!(l2.get(12), None);
    }

    #[test]
    fn compression_round_trips_and_bounds_what_it_inflates() {
        let mut l = StatusList::new(100_000, 1).unwrap();
        l.set(7, INVALID).unwrap();
        l.set(99_999, INVALID).unwrap();
        let back = StatusList::from_compressed(&l.compressed(), 1).unwrap();
        assert_eq!(back, l);
        assert!(StatusList::from_compressed(b"not zlib", 1).is_err());
        assert!(StatusList::from_compressed(&l.compressed(), 3).is_err());
        // A zlib bomb: 17 MiB of zeros compresses to a few KB and is refused.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; MAX_LIST_BYTES + 1]).unwrap();
        let bomb = z.finish().unwrap();
        let err = StatusList::from_compressed(&bomb, 1).unwrap_err();
        assert!(err.detail.contains("more than"), "{err}");
        assert!(l.set(100_000, 1).is_err() && l.set(0, 2).is_err());
    }
}
