//! Distinguished names: RFC 4514 strings in, DER `Name` out, with the string types
//! RFC 5280 requires (countryName and serialNumber as PrintableString, domainComponent
//! and emailAddress as IA5String, the rest as UTF8String) and X.520's upper bounds.

use const_oid::ObjectIdentifier;
use der::asn1::{Ia5StringRef, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Any, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::error::{Error, Result};

#[derive(Clone, Copy)]
enum StringKind {
    Utf8,
    Printable,
    Ia5,
}

struct AttributeSpec {
    short: &'static str,
    oid: ObjectIdentifier,
    kind: StringKind,
    /// X.520 upper bound, in characters.
    max_len: usize,
}

const fn spec(short: &'static str, oid: &str, kind: StringKind, max_len: usize) -> AttributeSpec {
    AttributeSpec {
        short,
        oid: ObjectIdentifier::new_unwrap(oid),
        kind,
        max_len,
    }
}

const ATTRIBUTES: &[AttributeSpec] = &[
    spec("CN", "2.5.4.3", StringKind::Utf8, 64),
    spec("SERIALNUMBER", "2.5.4.5", StringKind::Printable, 64),
    spec("C", "2.5.4.6", StringKind::Printable, 2),
    spec("L", "2.5.4.7", StringKind::Utf8, 128),
    spec("ST", "2.5.4.8", StringKind::Utf8, 128),
    spec("STREET", "2.5.4.9", StringKind::Utf8, 128),
    spec("O", "2.5.4.10", StringKind::Utf8, 64),
    spec("OU", "2.5.4.11", StringKind::Utf8, 64),
    spec("UID", "0.9.2342.19200300.100.1.1", StringKind::Utf8, 64),
    spec("DC", "0.9.2342.19200300.100.1.25", StringKind::Ia5, 63),
    spec("EMAILADDRESS", "1.2.840.113549.1.9.1", StringKind::Ia5, 255),
];

fn spec_by_short(short: &str) -> Option<&'static AttributeSpec> {
    let upper = short.to_ascii_uppercase();
    let upper = if upper == "E" {
        "EMAILADDRESS".to_string()
    } else {
        upper
    };
    ATTRIBUTES.iter().find(|s| s.short == upper)
}

fn spec_by_oid(oid: &ObjectIdentifier) -> Option<&'static AttributeSpec> {
    ATTRIBUTES.iter().find(|s| s.oid == *oid)
}

/// The short name of an attribute type (`CN`, `OU` …) or its dotted OID.
pub fn attribute_short_name(oid: &ObjectIdentifier) -> String {
    spec_by_oid(oid)
        .map(|s| s.short.to_string())
        .unwrap_or_else(|| oid.to_string())
}

/// One attribute of a DN as text: (`CN`, `Hong Gildong(001234567)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub short: String,
    pub value: String,
}

/// Splits an RFC 4514 string into (type, value) pairs, most significant last as
/// written (`CN=…, OU=…, C=KR`). Escapes `\,` `\+` `\"` `\\` `\<` `\>` `\;` `\=` and
/// `\XX` hex pairs are honoured; multi-valued RDNs (`+`) are refused.
pub fn parse_rfc4514(s: &str) -> Result<Vec<Attribute>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut parts: Vec<String> = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars
                    .next()
                    .ok_or_else(|| Error::malformed(format!("DN `{s}` ends with a lone `\\`")))?;
                // Keep the escape for the value parser, which knows hex pairs.
                cur.push('\\');
                cur.push(next);
            }
            ',' => parts.push(std::mem::take(&mut cur)),
            '+' => {
                return Err(Error::malformed(format!(
                    "DN `{s}`: multi-valued RDNs (`+`) are not supported"
                )))
            }
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            return Err(Error::malformed(format!("DN `{s}` has an empty RDN")));
        }
        let eq = part
            .find('=')
            .ok_or_else(|| Error::malformed(format!("DN `{s}`: `{part}` is not TYPE=value")))?;
        let short = part[..eq].trim();
        let raw = part[eq + 1..].trim();
        let value = unescape(raw).map_err(|e| e.context(format!("DN `{s}`")))?;
        if value.is_empty() {
            return Err(Error::malformed(format!(
                "DN `{s}`: `{short}` has an empty value"
            )));
        }
        out.push(Attribute {
            short: short.to_string(),
            value,
        });
    }
    Ok(out)
}

fn unescape(raw: &str) -> Result<String> {
    let mut bytes = Vec::new();
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let n = b[i + 1];
            if n.is_ascii_hexdigit() && i + 2 < b.len() && b[i + 2].is_ascii_hexdigit() {
                let pair = std::str::from_utf8(&b[i + 1..i + 3]).expect("ascii");
                bytes.push(u8::from_str_radix(pair, 16).expect("hex pair"));
                i += 3;
            } else {
                bytes.push(n);
                i += 2;
            }
        } else {
            bytes.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).map_err(|_| Error::malformed("escaped value is not UTF-8"))
}

/// Builds a DER `Name` from attributes in RFC 4514 order (most specific first).
pub fn build(attributes: &[Attribute]) -> Result<Name> {
    let mut rdns = Vec::with_capacity(attributes.len());
    for a in attributes.iter().rev() {
        let spec = spec_by_short(&a.short).ok_or_else(|| {
            Error::malformed(format!(
                "unsupported DN attribute `{}` (one of CN, OU, O, L, ST, STREET, C, SERIALNUMBER, UID, DC, emailAddress)",
                a.short
            ))
        })?;
        let chars = a.value.chars().count();
        if chars > spec.max_len {
            return Err(Error::policy(format!(
                "DN attribute {} is {chars} characters; the upper bound is {}",
                spec.short, spec.max_len
            )));
        }
        let value = match spec.kind {
            StringKind::Utf8 => Any::encode_from(&Utf8StringRef::new(&a.value)?)?,
            StringKind::Printable => {
                let p = PrintableStringRef::new(&a.value).map_err(|_| {
                    Error::malformed(format!(
                        "DN attribute {} must be a PrintableString, `{}` is not",
                        spec.short, a.value
                    ))
                })?;
                Any::encode_from(&p)?
            }
            StringKind::Ia5 => {
                let p = Ia5StringRef::new(&a.value).map_err(|_| {
                    Error::malformed(format!(
                        "DN attribute {} must be ASCII, `{}` is not",
                        spec.short, a.value
                    ))
                })?;
                Any::encode_from(&p)?
            }
        };
        if spec.short == "C"
            && (a.value.len() != 2 || !a.value.chars().all(|c| c.is_ascii_uppercase()))
        {
            return Err(Error::malformed(format!(
                "countryName must be a two-letter ISO 3166 code, `{}` is not",
                a.value
            )));
        }
        let atv = AttributeTypeAndValue {
            oid: spec.oid,
            value,
        };
        rdns.push(RelativeDistinguishedName(SetOfVec::try_from(vec![atv])?));
    }
    Ok(RdnSequence(rdns))
}

/// Parses an RFC 4514 string straight into a DER `Name`.
pub fn parse(s: &str) -> Result<Name> {
    let attrs = parse_rfc4514(s)?;
    if attrs.is_empty() {
        return Err(Error::malformed("empty DN"));
    }
    build(&attrs)
}

/// An official as a GPKI subject names them: `CN=NAME(EMPLOYEE NUMBER)`, and the
/// institution as the least specific OU
/// (`CN=Hong Gildong(001234567), OU=people, OU=Ministry of the Interior and Safety, …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Official {
    pub name: String,
    pub employee_number: String,
    pub institution: String,
}

/// The official `attributes` (RFC 4514 order) name, when they name one.
pub fn official(attributes: &[Attribute]) -> Option<Official> {
    let cn = attributes.iter().find(|a| a.short == "CN")?;
    let (name, rest) = cn.value.split_once('(')?;
    let number = rest.strip_suffix(')')?;
    if name.trim().is_empty() || number.is_empty() || number.contains(['(', ')']) {
        return None;
    }
    let institution = attributes.iter().rfind(|a| a.short == "OU")?;
    Some(Official {
        name: name.trim().to_string(),
        employee_number: number.to_string(),
        institution: institution.value.clone(),
    })
}

/// Attributes of a DER `Name` in RFC 4514 order (most specific first).
pub fn attributes(name: &Name) -> Vec<Attribute> {
    let mut out = Vec::new();
    for rdn in name.0.iter().rev() {
        for atv in rdn.0.iter() {
            out.push(Attribute {
                short: attribute_short_name(&atv.oid),
                value: value_text(&atv.value),
            });
        }
    }
    out
}

fn value_text(value: &Any) -> String {
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            String::from_utf8_lossy(value.value()).into_owned()
        }
        Tag::BmpString => {
            let units: Vec<u16> = value
                .value()
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => format!("#{}", hex::encode(value.value())),
    }
}

/// RFC 4514 rendering (most specific first), escaping what must be escaped.
pub fn to_string(name: &Name) -> String {
    attributes(name)
        .iter()
        .map(|a| format!("{}={}", a.short, escape(&a.value)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let needs = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == v.chars().count() && c == ' ');
        if needs {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Values of attribute `short` (e.g. every `CN`), most specific first.
pub fn values(name: &Name, short: &str) -> Vec<String> {
    attributes(name)
        .into_iter()
        .filter(|a| a.short.eq_ignore_ascii_case(short))
        .map(|a| a.value)
        .collect()
}

/// Whether `subtree` is a prefix of `name` in DER order (RFC 5280 §4.2.1.10
/// directoryName constraints): every RDN of the subtree equals the RDN at the same
/// position of the name.
pub fn within_subtree(name: &Name, subtree: &Name) -> bool {
    subtree.0.len() <= name.0.len() && subtree.0.iter().zip(name.0.iter()).all(|(a, b)| a == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn gpki_shape_round_trips_with_rfc5280_string_types() {
        let s = "CN=Hong Gildong(001234567), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR";
        let name = parse(s).unwrap();
        assert_eq!(to_string(&name), s);
        // DER order starts with C (PrintableString) and ends with CN (UTF8String).
        assert_eq!(
            name.0[0].0.get(0).unwrap().value.tag(),
            Tag::PrintableString
        );
        assert_eq!(name.0[4].0.get(0).unwrap().value.tag(), Tag::Utf8String);
        assert!(name.to_der().is_ok());
    }

    #[test]
    fn escapes_and_refusals() {
        let name = parse(r"CN=Kim\, Minji, O=A\2bB, C=KR").unwrap();
        assert_eq!(values(&name, "CN"), vec!["Kim, Minji"]);
        assert_eq!(values(&name, "O"), vec!["A+B"]);
        assert!(parse("CN=a+OU=b").is_err());
        assert!(parse("CN=a, C=Korea").is_err());
        assert!(parse("XX=a").is_err());
        assert!(parse("CN=").is_err());
        assert!(parse(&format!("CN={}", "x".repeat(65))).is_err());
    }

    #[test]
    fn subtree_is_a_der_prefix() {
        let name = parse("CN=x, OU=people, O=Government of Korea, C=KR").unwrap();
        assert!(within_subtree(
            &name,
            &parse("O=Government of Korea, C=KR").unwrap()
        ));
        assert!(!within_subtree(&name, &parse("O=Other, C=KR").unwrap()));
    }
}
