//! Presentations as QR codes: rendered with `qrcode` (PNG through `png`, and Unicode
//! half blocks for a terminal), read back with `rqrr`.
//!
//! What the code carries, in byte mode:
//! - an mdoc DeviceResponse: its CBOR as it is (a map, first byte 0xA0–0xBF);
//! - an SD-JWT presentation under zlib (first byte 0x78), in binary: a CBOR array
//!   with, for each `~`-separated part, the array of its `.`-separated base64url
//!   segments decoded to byte strings. Undoing the base64url (twice over for the
//!   certificate in `x5c`) and deflating is what brings a three-attribute SD-JWT with
//!   its signer certificate under a version-40 code's 2,953 bytes; as text under
//!   zlib it is about 3,050. An SD-JWT whose base64url is not canonical (so that it
//!   would not come back byte for byte) travels as its text under zlib instead.
//!
//! A CBOR DeviceResponse never starts with 0x78 (a text string), so the first byte
//! tells the two apart.

use std::io::{Read, Write};

use coset::cbor::value::Value as Cbor;
use gpki_pki::{Error, Result};
use qrcode::{EcLevel, QrCode};

use crate::sdjwt::MAX_SD_JWT;

/// Pixels per module in a PNG, and the quiet zone in modules (ISO/IEC 18004: 4).
const SCALE: usize = 4;
const QUIET: usize = 4;
/// The largest image gpki reads a code from, in pixels per side.
const MAX_SIDE: u32 = 4096;

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(bytes).expect("zlib into a Vec");
    z.finish().expect("zlib into a Vec")
}

/// An SD-JWT's parts as CBOR: `[[bstr, …], …]`, one array per `~`-separated part.
fn sd_jwt_binary(text: &str) -> Option<Vec<u8>> {
    let parts = text
        .split('~')
        .map(|part| {
            if part.is_empty() {
                return Some(Cbor::Array(vec![]));
            }
            part.split('.')
                .map(|seg| crate::b64::decode(seg).ok().map(Cbor::Bytes))
                .collect::<Option<Vec<_>>>()
                .map(Cbor::Array)
        })
        .collect::<Option<Vec<_>>>()?;
    let encoded = crate::mdoc::encode(&Cbor::Array(parts));
    // Only if it comes back exactly (canonical base64url, no padding).
    (sd_jwt_text(&encoded).ok()?.as_bytes() == text.as_bytes()).then_some(encoded)
}

/// The SD-JWT text of [`sd_jwt_binary`]'s CBOR.
fn sd_jwt_text(cbor: &[u8]) -> Result<String> {
    let bad = || Error::malformed("the QR code's SD-JWT is not an array of arrays of byte strings");
    let Cbor::Array(parts) = crate::mdoc::decode(cbor, "the QR code's SD-JWT")? else {
        return Err(bad());
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let Cbor::Array(segments) = part else {
            return Err(bad());
        };
        let mut texts = Vec::with_capacity(segments.len());
        for s in segments {
            let Cbor::Bytes(b) = s else {
                return Err(bad());
            };
            texts.push(crate::b64::encode(&b));
        }
        out.push(texts.join("."));
    }
    Ok(out.join("~"))
}

/// The bytes a QR code carries for `presentation`.
pub fn pack(presentation: &[u8]) -> Vec<u8> {
    if !presentation.starts_with(b"ey") {
        return presentation.to_vec();
    }
    match std::str::from_utf8(presentation)
        .ok()
        .and_then(sd_jwt_binary)
    {
        Some(binary) => zlib(&binary),
        None => zlib(presentation),
    }
}

/// The presentation a QR code's bytes carry (the inverse of [`pack`]).
pub fn unpack(bytes: &[u8]) -> Result<Vec<u8>> {
    if bytes.first() != Some(&0x78) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(bytes)
        .take(MAX_SD_JWT as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::malformed(format!("the QR code's zlib data is corrupt: {e}")))?;
    if out.len() > MAX_SD_JWT {
        return Err(Error::malformed(format!(
            "the QR code inflates to more than {MAX_SD_JWT} bytes"
        )));
    }
    if out.starts_with(b"ey") {
        return Ok(out);
    }
    if matches!(out.first(), Some(0x80..=0x9f)) {
        return Ok(sd_jwt_text(&out)?.into_bytes());
    }
    Err(Error::malformed(
        "the QR code's zlib data is not an SD-JWT presentation",
    ))
}

/// A QR code for `presentation` at the strongest error correction that fits.
pub fn encode(presentation: &[u8]) -> Result<QrCode> {
    let data = pack(presentation);
    for level in [EcLevel::Q, EcLevel::M, EcLevel::L] {
        if let Ok(code) = QrCode::with_error_correction_level(&data, level) {
            return Ok(code);
        }
    }
    Err(Error::policy(format!(
        "the presentation is {} bytes in its QR form; one QR code holds at most 2,953 \
         (version 40-L): disclose fewer attributes (the portrait does not fit)",
        data.len()
    )))
}

/// What a code is: its version (1–40) and error correction level.
pub fn describe(code: &QrCode) -> (i16, &'static str) {
    let version = match code.version() {
        qrcode::Version::Normal(v) | qrcode::Version::Micro(v) => v,
    };
    let level = match code.error_correction_level() {
        EcLevel::L => "L",
        EcLevel::M => "M",
        EcLevel::Q => "Q",
        EcLevel::H => "H",
    };
    (version, level)
}

/// The code as an 8-bit greyscale PNG, with its quiet zone.
pub fn png(code: &QrCode) -> Result<Vec<u8>> {
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
            for y in my * SCALE..(my + 1) * SCALE {
                pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let side32 = u32::try_from(side).expect("a QR code is at most 177 modules");
    let mut encoder = png::Encoder::new(&mut out, side32, side32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&pixels))
        .map_err(|e| Error::internal(format!("PNG: {e}")))?;
    Ok(out)
}

/// The code for a terminal: two modules per character cell, with its quiet zone.
pub fn terminal(code: &QrCode) -> String {
    code.render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build()
}

/// The presentation in the first QR code of a PNG image.
pub fn read_png(image: &[u8]) -> Result<Vec<u8>> {
    let bad = |e: png::DecodingError| Error::malformed(format!("not a readable PNG image: {e}"));
    let mut decoder = png::Decoder::new_with_limits(
        std::io::Cursor::new(image),
        png::Limits {
            bytes: 256 * 1024 * 1024,
        },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(bad)?;
    let (w, h) = reader.info().size();
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(Error::malformed(format!(
            "the image is {w}x{h} pixels; at most {MAX_SIDE} a side"
        )));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::malformed("the PNG image is too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(Error::malformed("an indexed PNG was not expanded"));
        }
    };
    let (w, h) = (info.width as usize, info.height as usize);
    let line = info.line_size;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let p = &buf[y * line + x * channels..];
        if channels >= 3 {
            ((u16::from(p[0]) * 3 + u16::from(p[1]) * 6 + u16::from(p[2])) / 10) as u8
        } else {
            p[0]
        }
    });
    let grids = img.detect_grids();
    let Some(grid) = grids.first() else {
        return Err(Error::malformed("no QR code found in the image"));
    };
    let mut bytes = Vec::new();
    grid.decode_to(&mut bytes)
        .map_err(|e| Error::malformed(format!("the QR code does not decode: {e}")))?;
    unpack(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_text_round_trip_through_a_png() {
        // Every byte value, as CBOR would have them.
        let mut cbor = vec![0xA3];
        cbor.extend((0..=255u8).cycle().take(1500));
        let code = encode(&cbor).unwrap();
        assert_eq!(read_png(&png(&code).unwrap()).unwrap(), cbor);

        // An SD-JWT in binary, and one whose padding ('=') keeps it as text.
        for jwt in [
            format!(
                "eyJhbGciOiJFUzI1NiJ9.{}.c2ln~WyJh~",
                "eyJpc3MiOiJodHRwczovL2lkIn0".repeat(60)
            ),
            format!(
                "eyJhbGciOiJFUzI1NiJ9.{}.c2ln==~",
                "eyJpc3MiOiJodHRwczovL2lkIn0".repeat(60)
            ),
        ] {
            let code = encode(jwt.as_bytes()).unwrap();
            assert!(pack(jwt.as_bytes()).len() < jwt.len());
            assert_eq!(read_png(&png(&code).unwrap()).unwrap(), jwt.as_bytes());
            assert!(terminal(&code).lines().count() > 10);
        }
    }

    #[test]
    fn what_does_not_fit_or_decode_is_refused_by_name() {
        let mut big = vec![0xA3];
        big.extend((0x80..=0xFFu8).cycle().take(3000));
        let Err(e) = encode(&big) else {
            panic!("3,001 bytes made a QR code")
        };
        assert!(e.detail.contains("2,953"), "{e}");
        assert!(read_png(b"not a png").unwrap_err().detail.contains("PNG"));
        let blank = {
            let mut out = Vec::new();
            let mut e = png::Encoder::new(&mut out, 64, 64);
            e.set_color(png::ColorType::Grayscale);
            e.write_header()
                .unwrap()
                .write_image_data(&[255; 64 * 64])
                .unwrap();
            out
        };
        assert!(read_png(&blank).unwrap_err().detail.contains("no QR code"));
        assert!(unpack(&[0x78, 0x9c, 1, 2, 3]).is_err());
    }
}
