//! A borrowing DER reader for the outer layers of CMS messages and CRLs. A signed or
//! enveloped document of megabytes is walked in place: RustCrypto's owned types
//! copy the content once per layer, which cost more than hashing it (see
//! docs/benchmarks.md, "Standard API"). Small inner structures (a SignerInfo, a
//! certificate) are still decoded with `der`/`cms`.

use crate::{Error, Result};

/// One TLV: its tag octet, its content, and its whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

/// Reads consecutive TLVs from a slice.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next TLV. Refuses high tag numbers, indefinite lengths (BER, not DER)
    /// and lengths past the end.
    pub fn next(&mut self, what: &str) -> Result<Tlv<'a>> {
        let bad = |why: &str| Error::malformed(format!("{what}: {why}"));
        let b = self.rest;
        let (&tag, after) = b.split_first().ok_or_else(|| bad("truncated"))?;
        if tag & 0x1f == 0x1f {
            return Err(bad("high tag numbers are not used in CMS"));
        }
        let (&first, after) = after.split_first().ok_or_else(|| bad("truncated"))?;
        let (len, after) = if first < 0x80 {
            (first as usize, after)
        } else if first == 0x80 {
            return Err(bad(
                "indefinite length (BER); gpki reads DER, as `openssl cms` writes without -stream",
            ));
        } else {
            let n = (first & 0x7f) as usize;
            if n > 4 || after.len() < n {
                return Err(bad("length too long"));
            }
            let len = after[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, &after[n..])
        };
        if after.len() < len {
            return Err(bad("truncated"));
        }
        let header = b.len() - after.len();
        let value = &after[..len];
        let raw = &b[..header + len];
        self.rest = &after[len..];
        Ok(Tlv { tag, value, raw })
    }

    /// The next TLV, which must carry `tag`.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>> {
        let t = self.next(what)?;
        if t.tag != tag {
            return Err(Error::malformed(format!(
                "{what}: expected tag {tag:#04x}, found {:#04x}",
                t.tag
            )));
        }
        Ok(t)
    }

    /// The next TLV when it carries `tag`.
    pub fn optional(&mut self, tag: u8, what: &str) -> Result<Option<Tlv<'a>>> {
        if self.peek_tag() == Some(tag) {
            self.next(what).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The content of the single TLV `bytes` is, which must carry `tag` and nothing
/// after it.
pub fn only<'a>(bytes: &'a [u8], tag: u8, what: &str) -> Result<Tlv<'a>> {
    let mut r = Reader::new(bytes);
    let t = r.expect(tag, what)?;
    if !r.is_empty() {
        return Err(Error::malformed(format!("{what}: trailing data")));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_long_and_refuses_ber_and_truncation() {
        let mut long = vec![0x04, 0x82, 0x01, 0x00];
        long.extend(std::iter::repeat_n(7u8, 256));
        let t = only(&long, 0x04, "x").unwrap();
        assert_eq!(t.value.len(), 256);
        assert_eq!(t.raw.len(), 260);
        let e = only(&[0x30, 0x80, 0, 0], 0x30, "x").unwrap_err();
        assert!(e.detail.contains("indefinite"), "{e}");
        let e = only(&[0x30, 0x05, 1], 0x30, "x").unwrap_err();
        assert!(e.detail.contains("truncated"), "{e}");
        let e = only(&[0x04, 0x00, 0x00], 0x04, "x").unwrap_err();
        assert!(e.detail.contains("trailing"), "{e}");
        let e = only(&[0x04, 0x85, 1, 1, 1, 1, 1], 0x04, "x").unwrap_err();
        assert!(e.detail.contains("too long"), "{e}");
    }
}
