//! Certificate serial numbers (invariant 2): at least 64 bits from a CSPRNG, positive,
//! at most 20 octets (RFC 5280 §4.1.2.2).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Octets in a generated serial: 16, of which 126 bits are random.
pub const SERIAL_OCTETS: usize = 16;

/// A certificate serial number as its minimal big-endian positive magnitude.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerialNumber(Vec<u8>);

impl SerialNumber {
    /// A fresh serial from OpenSSL's CSPRNG. The first octet is `01xxxxxx`, so the
    /// value is positive, its DER encoding is exactly 16 octets and needs no padding.
    pub fn random() -> Result<SerialNumber> {
        let mut buf = [0u8; SERIAL_OCTETS];
        openssl::rand::rand_bytes(&mut buf).map_err(|e| Error::internal(format!("CSPRNG: {e}")))?;
        buf[0] = (buf[0] & 0x3f) | 0x40;
        Ok(SerialNumber(buf.to_vec()))
    }

    /// From the magnitude bytes of a decoded certificate (leading zeros stripped).
    pub fn from_bytes(bytes: &[u8]) -> Result<SerialNumber> {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let magnitude = &bytes[start..];
        if magnitude.is_empty() {
            return Err(Error::malformed("serial number is zero"));
        }
        if magnitude.len() > 20 {
            return Err(Error::malformed("serial number is longer than 20 octets"));
        }
        Ok(SerialNumber(magnitude.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex, no separators: how the store and the CLI name a serial.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    pub fn to_x509(&self) -> Result<x509_cert::serial_number::SerialNumber> {
        Ok(x509_cert::serial_number::SerialNumber::new(&self.0)?)
    }
}

impl fmt::Display for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SerialNumber({})", self.to_hex())
    }
}

impl FromStr for SerialNumber {
    type Err = Error;
    /// Accepts hex with optional `0x` and `:` separators, any case.
    fn from_str(s: &str) -> Result<Self> {
        let cleaned: String = s
            .trim()
            .trim_start_matches("0x")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        let padded = if cleaned.len() % 2 == 1 {
            format!("0{cleaned}")
        } else {
            cleaned
        };
        let bytes = hex::decode(&padded)
            .map_err(|_| Error::malformed(format!("serial `{s}` is not hexadecimal")))?;
        SerialNumber::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn random_serials_are_positive_16_octets_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let s = SerialNumber::random().unwrap();
            let der_bytes = s.to_x509().unwrap().to_der().unwrap();
            // INTEGER tag, length 16, no 0x00 pad, first bit clear.
            assert_eq!(der_bytes[0], 0x02);
            assert_eq!(der_bytes[1] as usize, SERIAL_OCTETS);
            assert!(der_bytes[2] & 0x80 == 0 && der_bytes[2] != 0);
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn hex_round_trip_and_refusals() {
        let s: SerialNumber = "0x0A:bC".parse().unwrap();
        assert_eq!(s.to_hex(), "0abc");
        assert!("zz".parse::<SerialNumber>().is_err());
        assert!("00".parse::<SerialNumber>().is_err());
        assert!("01".repeat(21).parse::<SerialNumber>().is_err());
    }
}
