//! The one data model both formats carry: the mobile public-official ID.

use gpki_pki::{Error, Result};
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::Date;

/// The mdoc docType and namespace, and the SD-JWT VC `vct`, of the mobile
/// public-official ID: one identifier for one credential type in both formats.
pub const DOC_TYPE: &str = "kr.go.gpki.mpoid.1";
pub const NAMESPACE: &str = DOC_TYPE;
pub const VCT: &str = DOC_TYPE;

/// The attributes, by the name both formats use (mdoc elementIdentifier, SD-JWT
/// claim name), in the order they are listed.
pub const ATTRIBUTES: &[&str] = &[
    "name",
    "employee_number",
    "institution",
    "department",
    "position",
    "portrait",
    "issue_date",
    "expiry_date",
];

/// The largest portrait a credential carries (ISO/IEC 18013-5 keeps portraits
/// small; a JPEG of a face at ID-card size is 5-20 KB).
pub const MAX_PORTRAIT: usize = 64 * 1024;
const MAX_TEXT: usize = 256;

/// A mobile public-official ID's attributes, as the RA knows the official.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficialId {
    pub name: String,
    pub employee_number: String,
    pub institution: String,
    pub department: String,
    pub position: String,
    /// A JPEG photograph; from a file of its own, never from the attribute JSON.
    #[serde(skip)]
    pub portrait: Option<Vec<u8>>,
    #[serde(with = "full_date")]
    pub issue_date: Date,
    #[serde(with = "full_date")]
    pub expiry_date: Date,
}

/// One attribute's value, typed as both formats type it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    /// A calendar date: CBOR full-date (tag 1004, RFC 8943); JSON `YYYY-MM-DD`.
    Date(Date),
    /// A JPEG image: CBOR byte string; JSON data URL.
    Jpeg(Vec<u8>),
}

impl Value {
    /// The JSON form (SD-JWT disclosures, the verifier's report).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Text(t) => serde_json::Value::String(t.clone()),
            Value::Date(d) => serde_json::Value::String(format_date(*d)),
            Value::Jpeg(b) => serde_json::Value::String(format!(
                "data:image/jpeg;base64,{}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b)
            )),
        }
    }

    /// The value of attribute `name` from its JSON form, typed as the model types it.
    pub fn from_json(name: &str, v: &serde_json::Value) -> Result<Value> {
        let text = v
            .as_str()
            .ok_or_else(|| Error::malformed(format!("attribute `{name}` is not a JSON string")))?;
        match name {
            "issue_date" | "expiry_date" => Ok(Value::Date(parse_date(text)?)),
            "portrait" => {
                let b64 = text
                    .strip_prefix("data:image/jpeg;base64,")
                    .ok_or_else(|| {
                        Error::malformed("attribute `portrait` is not a JPEG data URL")
                    })?;
                let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
                    .map_err(|e| Error::malformed(format!("attribute `portrait`: {e}")))?;
                Ok(Value::Jpeg(bytes))
            }
            _ => Ok(Value::Text(text.to_string())),
        }
    }
}

impl OfficialId {
    /// Reads the attribute JSON (every attribute but the portrait) and checks it.
    pub fn from_json(json: &[u8], portrait: Option<Vec<u8>>) -> Result<OfficialId> {
        let mut id: OfficialId = serde_json::from_slice(json)
            .map_err(|e| Error::malformed(format!("attributes: {e}")))?;
        id.portrait = portrait;
        id.validate()?;
        Ok(id)
    }

    /// Refuses what no credential should carry: empty or oversized text, control
    /// characters, an expiry before the issue date, a portrait that is not a JPEG or
    /// is larger than [`MAX_PORTRAIT`].
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("name", &self.name),
            ("employee_number", &self.employee_number),
            ("institution", &self.institution),
            ("department", &self.department),
            ("position", &self.position),
        ] {
            if v.trim().is_empty() {
                return Err(Error::malformed(format!("attribute `{name}` is empty")));
            }
            if v.len() > MAX_TEXT {
                return Err(Error::malformed(format!(
                    "attribute `{name}` is longer than {MAX_TEXT} bytes"
                )));
            }
            if v.chars().any(char::is_control) {
                return Err(Error::malformed(format!(
                    "attribute `{name}` contains a control character"
                )));
            }
        }
        if !self
            .employee_number
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(Error::malformed(
                "attribute `employee_number` holds characters other than letters, digits and -",
            ));
        }
        if self.expiry_date < self.issue_date {
            return Err(Error::malformed(
                "attribute `expiry_date` is before `issue_date`",
            ));
        }
        if let Some(p) = &self.portrait {
            if p.len() > MAX_PORTRAIT {
                return Err(Error::malformed(format!(
                    "the portrait is {} bytes; at most {MAX_PORTRAIT}",
                    p.len()
                )));
            }
            if !p.starts_with(&[0xFF, 0xD8, 0xFF]) {
                return Err(Error::malformed("the portrait is not a JPEG image"));
            }
        }
        Ok(())
    }

    /// Every attribute the credential carries, in [`ATTRIBUTES`] order (the portrait
    /// only when there is one).
    pub fn claims(&self) -> Vec<(&'static str, Value)> {
        let mut out = vec![
            ("name", Value::Text(self.name.clone())),
            ("employee_number", Value::Text(self.employee_number.clone())),
            ("institution", Value::Text(self.institution.clone())),
            ("department", Value::Text(self.department.clone())),
            ("position", Value::Text(self.position.clone())),
        ];
        if let Some(p) = &self.portrait {
            out.push(("portrait", Value::Jpeg(p.clone())));
        }
        out.push(("issue_date", Value::Date(self.issue_date)));
        out.push(("expiry_date", Value::Date(self.expiry_date)));
        out
    }
}

/// Where a credential's status is: a status list's URI and the credential's index
/// in it (IETF OAuth Token Status List, the `status_list` status mechanism).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRef {
    pub uri: String,
    pub idx: u64,
}

/// When a credential is valid, in Unix seconds: signed, valid from, valid until.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub signed: i64,
    pub valid_from: i64,
    pub valid_until: i64,
}

pub fn format_date(d: Date) -> String {
    d.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_else(|_| d.to_string())
}

pub fn parse_date(s: &str) -> Result<Date> {
    Date::parse(s, format_description!("[year]-[month]-[day]"))
        .map_err(|e| Error::malformed(format!("`{s}` is not a YYYY-MM-DD date: {e}")))
}

mod full_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_date(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_date(&text).map_err(serde::de::Error::custom)
    }
}

/// The two formats of one data model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mdoc,
    SdJwt,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Mdoc => "mdoc",
            Format::SdJwt => "sd-jwt",
        }
    }

    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "mdoc" => Ok(Format::Mdoc),
            "sd-jwt" => Ok(Format::SdJwt),
            _ => Err(Error::malformed(format!(
                "unknown credential format `{s}` (mdoc or sd-jwt)"
            ))),
        }
    }
}
