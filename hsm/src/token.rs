//! Finding tokens and keys a URI names, logging in, reading public keys, and the
//! mapping of PKCS #11 return values to gpki error kinds. Shared by the signer and
//! the administration functions.

use std::sync::Arc;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use gpki_pki::{Error, ErrorKind, KeyType, Result};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;

use crate::module::Module;
use crate::uri::{ObjectType, Pin, Pkcs11Uri};

/// DER of the named curves' OIDs, as CKA_EC_PARAMS holds them.
pub(crate) const EC_PARAMS_P256: &[u8] =
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(crate) const EC_PARAMS_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// Return values that mean the token, its session or the key went away: the
/// signer reports them as unavailable and reconnects.
pub(crate) fn is_gone(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::DeviceError
            | RvError::DeviceRemoved
            | RvError::DeviceMemory
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::UserNotLoggedIn
            | RvError::ObjectHandleInvalid
            | RvError::KeyHandleInvalid
            | RvError::SlotIdInvalid
            | RvError::CryptokiNotInitialized
            | RvError::GeneralError
    )
}

fn is_pin_refused(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::PinIncorrect
            | RvError::PinInvalid
            | RvError::PinLenRange
            | RvError::PinExpired
            | RvError::PinLocked
    )
}

/// A PKCS #11 error as a gpki error naming `shown` (a URI, never with a PIN). The
/// return value is named by its CKR name only: cryptoki's long texts say nothing
/// more, and no PKCS #11 error carries key material.
pub(crate) fn ck_error(e: CkError, shown: &str) -> Error {
    match e {
        CkError::Pkcs11(rv, function) if is_pin_refused(rv) => Error::unauthorized(format!(
            "{shown}: the token refused the PIN ({}: {})",
            function_name(function),
            rv_name(rv)
        )),
        CkError::Pkcs11(rv, function) if is_gone(rv) => Error::new(
            ErrorKind::Unavailable,
            format!(
                "{shown}: token unavailable ({}: {})",
                function_name(function),
                rv_name(rv)
            ),
        ),
        CkError::Pkcs11(rv, function) => Error::internal(format!(
            "{shown}: {}: {}",
            function_name(function),
            rv_name(rv)
        )),
        CkError::LibraryLoading(e) => {
            Error::not_found(format!("{shown}: cannot load the PKCS#11 module: {e}"))
        }
        other => Error::internal(format!("{shown}: PKCS#11: {other}")),
    }
}

/// `CKR_OBJECT_HANDLE_INVALID` for `RvError::ObjectHandleInvalid`: the name the
/// PKCS #11 specification and token logs use.
pub(crate) fn rv_name(rv: RvError) -> String {
    let camel = format!("{rv:?}");
    let mut name = String::from("CKR");
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// `C_SignInit` for `Function::SignInit`.
fn function_name(function: cryptoki::context::Function) -> String {
    format!("C_{function:?}")
}

/// The module a URI names. `module-name` is not resolved (yet): configurations
/// give the library's path.
pub(crate) fn module_of(uri: &Pkcs11Uri, shown: &str) -> Result<Arc<Module>> {
    let path = uri.module_path.as_deref().ok_or_else(|| {
        Error::malformed(format!(
            "{shown}: no module-path (the PKCS#11 library, e.g. ?module-path=/usr/lib/softhsm/libsofthsm2.so)"
        ))
    })?;
    Module::open(path).map_err(|e| ck_error(e, shown))
}

/// Whether the module's library information fits the URI's library-* attributes.
fn library_matches(pkcs11: &Pkcs11, uri: &Pkcs11Uri) -> std::result::Result<bool, CkError> {
    if uri.library_manufacturer.is_none()
        && uri.library_description.is_none()
        && uri.library_version.is_none()
    {
        return Ok(true);
    }
    let info = pkcs11.get_library_info()?;
    let version = info.library_version();
    Ok(uri
        .library_manufacturer
        .as_deref()
        .is_none_or(|m| m == info.manufacturer_id())
        && uri
            .library_description
            .as_deref()
            .is_none_or(|d| d == info.library_description())
        && uri
            .library_version
            .is_none_or(|v| v.major == version.major() && v.minor == version.minor()))
}

/// The slots whose token fits the URI's token and slot attributes.
pub(crate) fn matching_slots(
    pkcs11: &Pkcs11,
    uri: &Pkcs11Uri,
) -> std::result::Result<Vec<(Slot, cryptoki::slot::TokenInfo)>, CkError> {
    if !library_matches(pkcs11, uri)? {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for slot in pkcs11.get_slots_with_token()? {
        if uri.slot_id.is_some_and(|id| id != slot.id()) {
            continue;
        }
        if uri.slot_description.is_some() || uri.slot_manufacturer.is_some() {
            let info = pkcs11.get_slot_info(slot)?;
            if uri
                .slot_description
                .as_deref()
                .is_some_and(|d| d != info.slot_description())
                || uri
                    .slot_manufacturer
                    .as_deref()
                    .is_some_and(|m| m != info.manufacturer_id())
            {
                continue;
            }
        }
        let token = match pkcs11.get_token_info(slot) {
            Ok(t) => t,
            // The token left between the two calls.
            Err(CkError::Pkcs11(rv, _)) if is_gone(rv) => continue,
            Err(e) => return Err(e),
        };
        let fits = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        if fits(&uri.token, token.label())
            && fits(&uri.manufacturer, token.manufacturer_id())
            && fits(&uri.serial, token.serial_number())
            && fits(&uri.model, token.model())
            && token.token_initialized()
        {
            found.push((slot, token));
        }
    }
    Ok(found)
}

/// Why a lookup found nothing, kept apart from PKCS #11 failures so a reconnect
/// can tell "not there (yet)" from "broken".
pub(crate) enum Lookup<T> {
    Found(T),
    Missing(String),
}

/// The one slot the URI names.
pub(crate) fn find_slot(
    pkcs11: &Pkcs11,
    uri: &Pkcs11Uri,
    shown: &str,
) -> std::result::Result<Lookup<Slot>, Error> {
    let slots = matching_slots(pkcs11, uri).map_err(|e| ck_error(e, shown))?;
    match slots.len() {
        0 => Ok(Lookup::Missing(format!(
            "{shown}: no token of module {} matches",
            uri.module_path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ))),
        1 => Ok(Lookup::Found(slots[0].0)),
        n => Err(Error::malformed(format!(
            "{shown}: {n} tokens match; name one with token=, serial= or slot-id="
        ))),
    }
}

/// Logs the user in unless the token already is (login is per token and
/// application, not per session; `CKR_USER_ALREADY_LOGGED_IN` is success).
pub(crate) fn login(session: &Session, pin: &Pin) -> std::result::Result<(), CkError> {
    if matches!(
        session.get_session_info()?.session_state(),
        SessionState::RoUser | SessionState::RwUser
    ) {
        return Ok(());
    }
    let auth = AuthPin::from(pin.expose());
    match session.login(UserType::User, Some(&auth)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The private key the URI names (by `object` = CKA_LABEL and/or `id` = CKA_ID).
pub(crate) fn find_private_key(
    session: &Session,
    uri: &Pkcs11Uri,
    shown: &str,
) -> std::result::Result<Lookup<ObjectHandle>, Error> {
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    let found = session
        .find_objects(&template)
        .map_err(|e| ck_error(e, shown))?;
    match found.len() {
        0 => Ok(Lookup::Missing(format!(
            "{shown}: no private key with that object/id on the token"
        ))),
        1 => Ok(Lookup::Found(found[0])),
        n => Err(Error::malformed(format!(
            "{shown}: {n} private keys match; add id= or object= to name one"
        ))),
    }
}

/// Checks what a URI must say to name a signing key.
pub(crate) fn check_key_uri(uri: &Pkcs11Uri, shown: &str) -> Result<()> {
    if let Some(name) = uri.unrecognised_path_attribute() {
        // RFC 7512 §2.5: an attribute the consumer does not know matches nothing.
        return Err(Error::not_found(format!(
            "{shown}: path attribute {name} is not one gpki knows, so the URI names no object"
        )));
    }
    if uri.object_type.is_some_and(|t| t != ObjectType::Private) {
        return Err(Error::malformed(format!(
            "{shown}: a signing key is type=private"
        )));
    }
    if uri.object.is_none() && uri.id.is_none() {
        return Err(Error::malformed(format!(
            "{shown}: names no key; add object= (the key's label) or id="
        )));
    }
    Ok(())
}

/// What a private key object says about itself.
pub(crate) struct KeyFacts {
    pub(crate) label: Vec<u8>,
    pub(crate) id: Vec<u8>,
    pub(crate) key_type: Option<CkKeyType>,
    pub(crate) sensitive: Option<bool>,
    pub(crate) extractable: Option<bool>,
    pub(crate) always_sensitive: Option<bool>,
    pub(crate) never_extractable: Option<bool>,
    modulus: Option<Vec<u8>>,
    public_exponent: Option<Vec<u8>>,
    ec_params: Option<Vec<u8>>,
}

pub(crate) fn key_facts(
    session: &Session,
    key: ObjectHandle,
) -> std::result::Result<KeyFacts, CkError> {
    let attrs = session.get_attributes(
        key,
        &[
            AttributeType::Label,
            AttributeType::Id,
            AttributeType::KeyType,
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::EcParams,
        ],
    )?;
    let mut facts = KeyFacts {
        label: Vec::new(),
        id: Vec::new(),
        key_type: None,
        sensitive: None,
        extractable: None,
        always_sensitive: None,
        never_extractable: None,
        modulus: None,
        public_exponent: None,
        ec_params: None,
    };
    for attr in attrs {
        match attr {
            Attribute::Label(v) => facts.label = v,
            Attribute::Id(v) => facts.id = v,
            Attribute::KeyType(t) => facts.key_type = Some(t),
            Attribute::Sensitive(b) => facts.sensitive = Some(b),
            Attribute::Extractable(b) => facts.extractable = Some(b),
            Attribute::AlwaysSensitive(b) => facts.always_sensitive = Some(b),
            Attribute::NeverExtractable(b) => facts.never_extractable = Some(b),
            Attribute::Modulus(v) => facts.modulus = Some(v),
            Attribute::PublicExponent(v) => facts.public_exponent = Some(v),
            Attribute::EcParams(v) => facts.ec_params = Some(v),
            _ => {}
        }
    }
    Ok(facts)
}

/// gpki's name for a key object's type and size, when it is one gpki uses.
pub(crate) fn key_kind(facts: &KeyFacts) -> String {
    match facts.key_type {
        Some(t) if t == CkKeyType::RSA => match &facts.modulus {
            Some(m) => {
                let bits = m.len() * 8 - m.first().map_or(8, |b| b.leading_zeros() as usize);
                match bits {
                    2048 => "rsa2048".into(),
                    3072 => "rsa3072".into(),
                    4096 => "rsa4096".into(),
                    n => format!("rsa({n} bits)"),
                }
            }
            None => "rsa".into(),
        },
        Some(t) if t == CkKeyType::EC => match facts.ec_params.as_deref() {
            Some(EC_PARAMS_P256) => "p256".into(),
            Some(EC_PARAMS_P384) => "p384".into(),
            _ => "ec(other curve)".into(),
        },
        Some(t) => format!("{t}"),
        None => "unknown".into(),
    }
}

/// Refuses a private key that could leave the token (issue 30: CKA_SENSITIVE true,
/// CKA_EXTRACTABLE false).
pub(crate) fn check_kept_in_token(facts: &KeyFacts, shown: &str) -> Result<()> {
    if facts.sensitive != Some(true) {
        return Err(Error::policy(format!(
            "{shown}: the private key is not CKA_SENSITIVE; gpki signs only with keys that never leave the token"
        )));
    }
    if facts.extractable != Some(false) {
        return Err(Error::policy(format!(
            "{shown}: the private key is CKA_EXTRACTABLE; gpki signs only with keys that never leave the token"
        )));
    }
    Ok(())
}

/// The DER SubjectPublicKeyInfo of the private key `key`: from its public key
/// object (same CKA_ID, or same label when it has no id), or for RSA from the
/// modulus and exponent the private key object carries.
pub(crate) fn public_key_info(
    session: &Session,
    facts: &KeyFacts,
    shown: &str,
) -> std::result::Result<Lookup<(Vec<u8>, KeyType)>, Error> {
    let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
    if !facts.id.is_empty() {
        template.push(Attribute::Id(facts.id.clone()));
    } else {
        template.push(Attribute::Label(facts.label.clone()));
    }
    let publics = session
        .find_objects(&template)
        .map_err(|e| ck_error(e, shown))?;
    let public = match publics.as_slice() {
        [one] => Some(key_facts_public(session, *one).map_err(|e| ck_error(e, shown))?),
        _ => None,
    };
    let spki = match facts.key_type {
        Some(t) if t == CkKeyType::RSA => {
            let (n, e) = match (&public, &facts.modulus, &facts.public_exponent) {
                (Some(p), _, _) if p.modulus.is_some() && p.public_exponent.is_some() => (
                    p.modulus.clone().unwrap_or_default(),
                    p.public_exponent.clone().unwrap_or_default(),
                ),
                (_, Some(n), Some(e)) => (n.clone(), e.clone()),
                _ => {
                    return Ok(Lookup::Missing(format!(
                        "{shown}: neither a public key object nor the private key gives the RSA modulus"
                    )))
                }
            };
            rsa_spki(&n, &e).map_err(|e| e.context(shown))?
        }
        Some(t) if t == CkKeyType::EC => {
            let params = facts
                .ec_params
                .as_deref()
                .or(public.as_ref().and_then(|p| p.ec_params.as_deref()));
            let nid = match params {
                Some(EC_PARAMS_P256) => Nid::X9_62_PRIME256V1,
                Some(EC_PARAMS_P384) => Nid::SECP384R1,
                _ => {
                    return Err(Error::policy(format!(
                        "{shown}: the EC key is not on P-256 or P-384"
                    )))
                }
            };
            let Some(point) = public.as_ref().and_then(|p| p.ec_point.as_deref()) else {
                return Ok(Lookup::Missing(format!(
                    "{shown}: no public key object (same id) gives the EC point"
                )));
            };
            ec_spki(nid, point).map_err(|e| e.context(shown))?
        }
        _ => {
            return Err(Error::policy(format!(
                "{shown}: the key is neither RSA nor EC"
            )))
        }
    };
    let key_type = KeyType::of_spki(&spki).map_err(|e| e.context(shown))?;
    Ok(Lookup::Found((spki, key_type)))
}

struct PublicFacts {
    modulus: Option<Vec<u8>>,
    public_exponent: Option<Vec<u8>>,
    ec_params: Option<Vec<u8>>,
    ec_point: Option<Vec<u8>>,
}

fn key_facts_public(
    session: &Session,
    key: ObjectHandle,
) -> std::result::Result<PublicFacts, CkError> {
    let attrs = session.get_attributes(
        key,
        &[
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::EcParams,
            AttributeType::EcPoint,
        ],
    )?;
    let mut facts = PublicFacts {
        modulus: None,
        public_exponent: None,
        ec_params: None,
        ec_point: None,
    };
    for attr in attrs {
        match attr {
            Attribute::Modulus(v) => facts.modulus = Some(v),
            Attribute::PublicExponent(v) => facts.public_exponent = Some(v),
            Attribute::EcParams(v) => facts.ec_params = Some(v),
            Attribute::EcPoint(v) => facts.ec_point = Some(v),
            _ => {}
        }
    }
    Ok(facts)
}

fn ossl(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> Error {
    move |e| Error::internal(format!("{what}: {e}"))
}

fn rsa_spki(n: &[u8], e: &[u8]) -> Result<Vec<u8>> {
    let n = BigNum::from_slice(n).map_err(ossl("RSA modulus"))?;
    let e = BigNum::from_slice(e).map_err(ossl("RSA exponent"))?;
    let rsa = Rsa::from_public_components(n, e).map_err(ossl("RSA public key"))?;
    PKey::from_rsa(rsa)
        .and_then(|k| k.public_key_to_der())
        .map_err(ossl("RSA public key"))
}

fn ec_spki(nid: Nid, ec_point: &[u8]) -> Result<Vec<u8>> {
    let group = EcGroup::from_curve_name(nid).map_err(ossl("EC group"))?;
    let field = if nid == Nid::SECP384R1 { 48 } else { 32 };
    // PKCS #11 §2.3.3: CKA_EC_POINT is the DER OCTET STRING of the point; some
    // tokens give the bare point. An uncompressed point is 1 + 2 × field bytes.
    let point = if ec_point.len() == 1 + 2 * field {
        ec_point
    } else {
        match ec_point {
            [0x04, len, rest @ ..] if *len as usize == rest.len() => rest,
            [0x04, 0x81, len, rest @ ..] if *len as usize == rest.len() => rest,
            _ => {
                return Err(Error::malformed(
                    "CKA_EC_POINT is not an OCTET STRING of a point",
                ))
            }
        }
    };
    let mut ctx = BigNumContext::new().map_err(ossl("EC point"))?;
    let point = EcPoint::from_bytes(&group, point, &mut ctx)
        .map_err(|_| Error::malformed("CKA_EC_POINT is not a point on its curve"))?;
    let key = EcKey::from_public_key(&group, &point).map_err(ossl("EC public key"))?;
    PKey::from_ec_key(key)
        .and_then(|k| k.public_key_to_der())
        .map_err(ossl("EC public key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_are_named_as_the_specification_names_them() {
        assert_eq!(
            rv_name(RvError::ObjectHandleInvalid),
            "CKR_OBJECT_HANDLE_INVALID"
        );
        assert_eq!(rv_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        let e = ck_error(
            CkError::Pkcs11(RvError::DeviceError, cryptoki::context::Function::Sign),
            "pkcs11:token=t",
        );
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(
            e.detail,
            "pkcs11:token=t: token unavailable (C_Sign: CKR_DEVICE_ERROR)"
        );
        let e = ck_error(
            CkError::Pkcs11(RvError::PinIncorrect, cryptoki::context::Function::Login),
            "pkcs11:token=t",
        );
        assert_eq!(e.kind, ErrorKind::Unauthorized);
    }
}
