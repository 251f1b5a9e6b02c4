//! RFC 7512 PKCS #11 URIs, parsed into typed fields.
//!
//! `pkcs11:token=CA%20keys;object=sub-ca-1;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/gpki/pin`
//!
//! What this parser adds to the RFC's grammar, and why:
//! - `pin-value` is refused wherever it appears: a PIN in a URI ends up in
//!   configuration files, process lists and logs (the PIN comes from a
//!   [`PinSource`] instead).
//! - An attribute may appear once (RFC 7512 §2.3 gives every standard attribute one
//!   value; a second one is refused rather than silently winning or losing).
//! - A standard attribute in the wrong component (`?object=…`, `;module-path=…`)
//!   and a name that differs from a standard one only by case are refused: both
//!   would otherwise be read as vendor attributes and match nothing, which looks
//!   like a missing key instead of a typo.
//! - Vendor attributes (any other `1*(ALPHA / DIGIT / "-" / "_")` name) are kept
//!   as written. RFC 7512 §2.5 says an unrecognised path attribute matches no
//!   object, so a key lookup refuses a URI that has one ([`Pkcs11Uri::unrecognised_path_attribute`]);
//!   an unrecognised query attribute is ignored.
//!
//! Nothing here ever formats a PIN: the URI cannot hold one, and [`Pin`] has no
//! `Display` and a `Debug` that shows nothing.

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use gpki_pki::{Error, Result};

/// The object classes of the `type` attribute (RFC 7512 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    Public,
    Private,
    Cert,
    SecretKey,
    Data,
}

impl ObjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Public => "public",
            ObjectType::Private => "private",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }
}

/// `library-version`: `1*DIGIT [ "." 1*DIGIT ]`, the minor part 0 when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibraryVersion {
    pub major: u8,
    pub minor: u8,
}

/// Where the token's user PIN comes from. Never the PIN itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// The first line of a file (`file:/path`, `file:///path` or a bare absolute path).
    File(PathBuf),
    /// An environment variable, removed from the environment once read (`env:NAME`).
    Env(String),
    /// Asked on the terminal without echo (`prompt`).
    Prompt,
}

impl PinSource {
    fn parse(value: &str) -> Result<PinSource> {
        if value == "prompt" {
            return Ok(PinSource::Prompt);
        }
        if let Some(name) = value.strip_prefix("env:") {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(uri_error(format!(
                    "pin-source env: needs a variable name of letters, digits and `_`, got `{name}`"
                )));
            }
            return Ok(PinSource::Env(name.to_string()));
        }
        let path = if let Some(rest) = value.strip_prefix("file://") {
            // RFC 8089: file://host/path; only the local host (empty) is meaningful.
            if !rest.starts_with('/') {
                return Err(uri_error(
                    "pin-source file:// URIs must name a local absolute path (file:///path)",
                ));
            }
            rest
        } else if let Some(rest) = value.strip_prefix("file:") {
            rest
        } else {
            value
        };
        if !path.starts_with('/') {
            return Err(uri_error(format!(
                "pin-source `{value}` is not supported: use file:/absolute/path, env:NAME or prompt"
            )));
        }
        Ok(PinSource::File(PathBuf::from(path)))
    }

    /// Reads the PIN. An `env:` variable is removed from the environment once read,
    /// so child processes and later readers of `/proc/self/environ`-like dumps do
    /// not see it; read PINs at start, before threads that read the environment.
    pub fn read(&self) -> Result<Pin> {
        match self {
            PinSource::File(path) => read_pin_file(path),
            PinSource::Env(name) => {
                let value = std::env::var(name).map_err(|_| {
                    Error::not_found(format!(
                        "pin-source env:{name}: the variable is not set (or not UTF-8)"
                    ))
                })?;
                std::env::remove_var(name);
                let pin = Pin(zeroize::Zeroizing::new(value));
                if pin.0.is_empty() {
                    return Err(Error::malformed(format!(
                        "pin-source env:{name}: the variable is empty"
                    )));
                }
                Ok(pin)
            }
            PinSource::Prompt => {
                if !std::io::stdin().is_terminal() {
                    return Err(Error::unauthorized(
                        "the token PIN is to be asked on a terminal, and standard input is not one \
                         (give pin-source=file:… or env:…)",
                    ));
                }
                let text = rpassword::prompt_password("Token PIN: ")
                    .map_err(|e| Error::internal(format!("cannot read the PIN: {e}")))?;
                Ok(Pin(zeroize::Zeroizing::new(text)))
            }
        }
    }
}

impl fmt::Display for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSource::File(p) => write!(f, "file:{}", p.display()),
            PinSource::Env(n) => write!(f, "env:{n}"),
            PinSource::Prompt => f.write_str("prompt"),
        }
    }
}

fn read_pin_file(path: &Path) -> Result<Pin> {
    let bytes =
        zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
            Error::not_found(format!("cannot read PIN file {}: {e}", path.display()))
        })?);
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(Error::malformed(format!(
            "PIN file {} is empty",
            path.display()
        )));
    }
    let text = std::str::from_utf8(line)
        .map_err(|_| Error::malformed(format!("PIN file {} is not UTF-8", path.display())))?;
    Ok(Pin(zeroize::Zeroizing::new(text.to_string())))
}

/// A token user PIN: zeroed when dropped, never formatted.
#[derive(Clone)]
pub struct Pin(zeroize::Zeroizing<String>);

impl Pin {
    /// For tests and callers that already hold the PIN in memory (a prompt of their own).
    pub fn new(pin: impl Into<String>) -> Pin {
        Pin(zeroize::Zeroizing::new(pin.into()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(..)")
    }
}

/// A parsed RFC 7512 URI. Text attributes are percent-decoded (and must be UTF-8,
/// as PKCS #11 labels are); `id` is bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub library_manufacturer: Option<String>,
    pub library_description: Option<String>,
    pub library_version: Option<LibraryVersion>,
    pub object: Option<String>,
    pub object_type: Option<ObjectType>,
    pub id: Option<Vec<u8>>,
    pub slot_description: Option<String>,
    pub slot_manufacturer: Option<String>,
    pub slot_id: Option<u64>,
    pub module_path: Option<PathBuf>,
    pub module_name: Option<String>,
    pub pin_source: Option<PinSource>,
    /// Vendor attributes of the path, name and value as written (still percent-encoded).
    pub vendor_path: Vec<(String, String)>,
    /// Vendor attributes of the query, name and value as written.
    pub vendor_query: Vec<(String, String)>,
}

const PATH_ATTRIBUTES: [&str; 13] = [
    "token",
    "manufacturer",
    "serial",
    "model",
    "library-manufacturer",
    "library-description",
    "library-version",
    "object",
    "type",
    "id",
    "slot-description",
    "slot-manufacturer",
    "slot-id",
];
const QUERY_ATTRIBUTES: [&str; 4] = ["pin-source", "pin-value", "module-name", "module-path"];

fn uri_error(detail: impl fmt::Display) -> Error {
    Error::malformed(format!("PKCS#11 URI: {detail}"))
}

/// RFC 3986 unreserved.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// pk11-res-avail: reserved characters that delimit nothing inside a value.
fn is_res_avail(b: u8) -> bool {
    matches!(
        b,
        b':' | b'[' | b']' | b'@' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'='
    )
}

/// pk11-pchar without pct-encoded: `&` is free in the path, `;` and `?` delimit.
fn is_pchar(b: u8) -> bool {
    is_unreserved(b) || is_res_avail(b) || b == b'&'
}

/// pk11-qchar without pct-encoded: `/`, `?` and `|` are free in the query, `&` delimits.
fn is_qchar(b: u8) -> bool {
    is_unreserved(b) || is_res_avail(b) || matches!(b, b'/' | b'?' | b'|')
}

/// pk11-v-attr-nm-char; the standard names are made of the same characters.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks `value` against the component's characters and percent-decodes it.
fn decode(name: &str, value: &str, allowed: fn(u8) -> bool) -> Result<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .filter(|_| bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit())
                .ok_or_else(|| {
                    uri_error(format!(
                        "attribute {name}: `%` must be followed by two hex digits"
                    ))
                })?;
            out.push(hex);
            i += 3;
        } else if allowed(b) {
            out.push(b);
            i += 1;
        } else {
            let shown = value[i..].chars().next().unwrap_or('?');
            return Err(uri_error(format!(
                "attribute {name}: character {shown:?} must be percent-encoded"
            )));
        }
    }
    Ok(out)
}

fn text(name: &str, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes)
        .map_err(|_| uri_error(format!("attribute {name} is not UTF-8 once decoded")))
}

fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<()> {
    if slot.is_some() {
        return Err(uri_error(format!("attribute {name} appears twice")));
    }
    *slot = Some(value);
    Ok(())
}

impl FromStr for Pkcs11Uri {
    type Err = Error;

    fn from_str(s: &str) -> Result<Pkcs11Uri> {
        Pkcs11Uri::parse(s)
    }
}

impl Pkcs11Uri {
    /// Parses a URI. Errors name the attribute and the problem, never echo the
    /// input (it might hold a PIN someone put there by mistake).
    pub fn parse(s: &str) -> Result<Pkcs11Uri> {
        // RFC 3986 §3.1: schemes are case-insensitive.
        let rest = match s.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("pkcs11:") => &s[7..],
            _ => return Err(uri_error("does not start with `pkcs11:`")),
        };
        if rest.contains('#') {
            return Err(uri_error("a fragment (`#…`) is not part of the scheme"));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        let mut seen: Vec<String> = Vec::new();
        let mut note = |name: &str| -> Result<()> {
            if seen.iter().any(|n| n == name) {
                return Err(uri_error(format!("attribute {name} appears twice")));
            }
            seen.push(name.to_string());
            Ok(())
        };
        if !path.is_empty() {
            for attr in path.split(';') {
                let (name, value) = split_attribute(attr, "path")?;
                note(name)?;
                uri.path_attribute(name, value)?;
            }
        }
        if let Some(query) = query {
            if !query.is_empty() {
                for attr in query.split('&') {
                    let (name, value) = split_attribute(attr, "query")?;
                    note(name)?;
                    uri.query_attribute(name, value)?;
                }
            }
        }
        Ok(uri)
    }

    fn path_attribute(&mut self, name: &str, value: &str) -> Result<()> {
        if name == "pin-value" {
            return Err(pin_value_refused());
        }
        if QUERY_ATTRIBUTES.contains(&name) {
            return Err(uri_error(format!(
                "{name} is a query attribute: write it after `?`"
            )));
        }
        let raw = decode(name, value, is_pchar)?;
        match name {
            "token" => set(&mut self.token, name, text(name, raw)?),
            "manufacturer" => set(&mut self.manufacturer, name, text(name, raw)?),
            "serial" => set(&mut self.serial, name, text(name, raw)?),
            "model" => set(&mut self.model, name, text(name, raw)?),
            "library-manufacturer" => set(&mut self.library_manufacturer, name, text(name, raw)?),
            "library-description" => set(&mut self.library_description, name, text(name, raw)?),
            "object" => set(&mut self.object, name, text(name, raw)?),
            "slot-description" => set(&mut self.slot_description, name, text(name, raw)?),
            "slot-manufacturer" => set(&mut self.slot_manufacturer, name, text(name, raw)?),
            "id" => set(&mut self.id, name, raw),
            "library-version" => {
                // 1*DIGIT [ "." 1*DIGIT ], written literally (no percent-encoding).
                let (major, minor) = match value.split_once('.') {
                    Some((a, b)) => (a, Some(b)),
                    None => (value, None),
                };
                let number = |part: &str| -> Result<u8> {
                    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(uri_error(
                            "library-version must be digits, optionally `.` and digits",
                        ));
                    }
                    part.parse::<u8>()
                        .map_err(|_| uri_error("library-version parts must be at most 255"))
                };
                let version = LibraryVersion {
                    major: number(major)?,
                    minor: minor.map(number).transpose()?.unwrap_or(0),
                };
                set(&mut self.library_version, name, version)
            }
            "type" => {
                let t = match value {
                    "public" => ObjectType::Public,
                    "private" => ObjectType::Private,
                    "cert" => ObjectType::Cert,
                    "secret-key" => ObjectType::SecretKey,
                    "data" => ObjectType::Data,
                    _ => {
                        return Err(uri_error(
                            "type must be one of public, private, cert, secret-key, data",
                        ))
                    }
                };
                set(&mut self.object_type, name, t)
            }
            "slot-id" => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(uri_error("slot-id must be a decimal number"));
                }
                let id = value
                    .parse::<u64>()
                    .map_err(|_| uri_error("slot-id is too large"))?;
                set(&mut self.slot_id, name, id)
            }
            other => {
                refuse_misspelt_standard(other)?;
                self.vendor_path
                    .push((other.to_string(), value.to_string()));
                Ok(())
            }
        }
    }

    fn query_attribute(&mut self, name: &str, value: &str) -> Result<()> {
        if name == "pin-value" {
            return Err(pin_value_refused());
        }
        if PATH_ATTRIBUTES.contains(&name) {
            return Err(uri_error(format!(
                "{name} is a path attribute: write it before `?`"
            )));
        }
        let raw = decode(name, value, is_qchar)?;
        match name {
            "module-name" => set(&mut self.module_name, name, text(name, raw)?),
            "module-path" => {
                let path = PathBuf::from(text(name, raw)?);
                // RFC 7512 §2.3: module-path is an absolute path to the library.
                if !path.is_absolute() {
                    return Err(uri_error("module-path must be an absolute path"));
                }
                set(&mut self.module_path, name, path)
            }
            "pin-source" => {
                let source = PinSource::parse(&text(name, raw)?)?;
                set(&mut self.pin_source, name, source)
            }
            other => {
                refuse_misspelt_standard(other)?;
                self.vendor_query
                    .push((other.to_string(), value.to_string()));
                Ok(())
            }
        }
    }

    /// The first path attribute this crate does not know. RFC 7512 §2.5: such a
    /// URI matches no object, so looking a key up with it is refused.
    pub fn unrecognised_path_attribute(&self) -> Option<&str> {
        self.vendor_path.first().map(|(n, _)| n.as_str())
    }

    /// Reads the PIN from the URI's pin-source, or asks on the terminal when
    /// there is none.
    pub fn read_pin(&self) -> Result<Pin> {
        self.pin_source
            .as_ref()
            .unwrap_or(&PinSource::Prompt)
            .read()
            .map_err(|e| e.context(format!("PIN for {self}")))
    }
}

fn pin_value_refused() -> Error {
    uri_error(
        "pin-value is refused: a PIN is never written in a URI; \
         use pin-source=file:/path, env:NAME or prompt",
    )
}

fn refuse_misspelt_standard(name: &str) -> Result<()> {
    if let Some(standard) = PATH_ATTRIBUTES
        .iter()
        .chain(QUERY_ATTRIBUTES.iter())
        .find(|s| s.eq_ignore_ascii_case(name))
    {
        return Err(uri_error(format!(
            "attribute names are case-sensitive: `{name}` is not `{standard}`"
        )));
    }
    Ok(())
}

fn split_attribute<'a>(attr: &'a str, component: &str) -> Result<(&'a str, &'a str)> {
    let (name, value) = attr.split_once('=').ok_or_else(|| {
        if attr.is_empty() {
            uri_error(format!(
                "empty attribute in the {component} (stray delimiter)"
            ))
        } else {
            uri_error(format!("{component} attribute without `=`"))
        }
    })?;
    if !is_name(name) {
        return Err(uri_error(format!(
            "{component} attribute name `{}` is not letters, digits, `-` and `_`",
            name.escape_debug()
        )));
    }
    Ok((name, value))
}

/// Percent-encodes every byte outside `keep`.
fn encode(out: &mut fmt::Formatter<'_>, bytes: &[u8], keep: fn(u8) -> bool) -> fmt::Result {
    for &b in bytes {
        if keep(b) {
            write!(out, "{}", b as char)?;
        } else {
            write!(out, "%{b:02X}")?;
        }
    }
    Ok(())
}

/// Characters left as they are in values written out: unreserved and the
/// delimiter-free reserved ones, minus `&` (kept encoded so a value reads the same
/// in either component).
fn keep_path(b: u8) -> bool {
    is_unreserved(b) || is_res_avail(b)
}

fn keep_query(b: u8) -> bool {
    is_qchar(b)
}

impl fmt::Display for Pkcs11Uri {
    /// The URI in a canonical order. It never contains a PIN: the parser refuses
    /// `pin-value`, and `pin-source` names a place, not a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pkcs11:")?;
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>, s: &str| -> fmt::Result {
            if !std::mem::take(&mut first) {
                f.write_str(s)?;
            }
            Ok(())
        };
        let texts: [(&str, &Option<String>); 4] = [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("serial", &self.serial),
            ("model", &self.model),
        ];
        for (name, value) in texts {
            if let Some(v) = value {
                sep(f, ";")?;
                write!(f, "{name}=")?;
                encode(f, v.as_bytes(), keep_path)?;
            }
        }
        let texts: [(&str, &Option<String>); 2] = [
            ("library-manufacturer", &self.library_manufacturer),
            ("library-description", &self.library_description),
        ];
        for (name, value) in texts {
            if let Some(v) = value {
                sep(f, ";")?;
                write!(f, "{name}=")?;
                encode(f, v.as_bytes(), keep_path)?;
            }
        }
        if let Some(v) = self.library_version {
            sep(f, ";")?;
            write!(f, "library-version={}.{}", v.major, v.minor)?;
        }
        if let Some(v) = &self.object {
            sep(f, ";")?;
            f.write_str("object=")?;
            encode(f, v.as_bytes(), keep_path)?;
        }
        if let Some(t) = self.object_type {
            sep(f, ";")?;
            write!(f, "type={}", t.as_str())?;
        }
        if let Some(id) = &self.id {
            // RFC 7512 §2.3: id is best written fully percent-encoded.
            sep(f, ";")?;
            f.write_str("id=")?;
            encode(f, id, |_| false)?;
        }
        let texts: [(&str, &Option<String>); 2] = [
            ("slot-description", &self.slot_description),
            ("slot-manufacturer", &self.slot_manufacturer),
        ];
        for (name, value) in texts {
            if let Some(v) = value {
                sep(f, ";")?;
                write!(f, "{name}=")?;
                encode(f, v.as_bytes(), keep_path)?;
            }
        }
        if let Some(id) = self.slot_id {
            sep(f, ";")?;
            write!(f, "slot-id={id}")?;
        }
        for (name, value) in &self.vendor_path {
            sep(f, ";")?;
            write!(f, "{name}={value}")?;
        }
        let mut query = Vec::new();
        if let Some(p) = &self.module_path {
            query.push(("module-path", p.to_string_lossy().into_owned(), true));
        }
        if let Some(n) = &self.module_name {
            query.push(("module-name", n.clone(), true));
        }
        if let Some(s) = &self.pin_source {
            query.push(("pin-source", s.to_string(), true));
        }
        for (name, value) in &self.vendor_query {
            query.push((name.as_str(), value.clone(), false));
        }
        for (i, (name, value, encode_it)) in query.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            write!(f, "{name}=")?;
            if *encode_it {
                encode(f, value.as_bytes(), keep_query)?;
            } else {
                f.write_str(value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
