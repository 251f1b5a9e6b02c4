//! Making keys in a token and listing what tokens hold: the ground under
//! `gpki hsm keygen` and `gpki hsm list`.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use gpki_pki::{Error, ErrorKind, KeyType, Result};

use crate::token::{self, Lookup};
use crate::uri::{ObjectType, Pin, Pkcs11Uri};

/// Makes a key pair of `key_type` in the token `uri` names, labelled `label` with
/// CKA_ID `id`. The private key is made in the token and never leaves it:
/// CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN only.
/// Returns the URI of the new private key (the token's attributes from `uri`,
/// `object=label`, `id`, `type=private`, and the query of `uri`).
pub fn keygen(
    uri: &Pkcs11Uri,
    pin: &Pin,
    key_type: KeyType,
    label: &str,
    id: &[u8],
) -> Result<Pkcs11Uri> {
    let shown = uri.to_string();
    if label.is_empty() || id.is_empty() {
        return Err(Error::malformed(format!(
            "{shown}: a new key needs a label and a non-empty id"
        )));
    }
    let module = token::module_of(uri, &shown)?;
    let mut refreshed = false;
    let (ctx, slot) = loop {
        let ctx = module.context().map_err(|e| token::ck_error(e, &shown))?;
        match token::find_slot(ctx.pkcs11(), uri, &shown)? {
            Lookup::Found(slot) => break (ctx, slot),
            Lookup::Missing(why) if refreshed => return Err(Error::not_found(why)),
            Lookup::Missing(_) => {
                // A token made since the module was initialised (SoftHSM lists
                // tokens only at C_Initialize).
                let generation = ctx.generation();
                drop(ctx);
                module
                    .reinitialise(generation)
                    .map_err(|e| token::ck_error(e, &shown))?;
                refreshed = true;
            }
        }
    };
    let session = ctx
        .pkcs11()
        .open_rw_session(slot)
        .map_err(|e| token::ck_error(e, &shown))?;
    token::login(&session, pin).map_err(|e| token::ck_error(e, &shown))?;
    for (what, attr) in [
        ("label", Attribute::Label(label.as_bytes().to_vec())),
        ("id", Attribute::Id(id.to_vec())),
    ] {
        let found = session
            .find_objects(&[attr])
            .map_err(|e| token::ck_error(e, &shown))?;
        if !found.is_empty() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{shown}: the token already holds an object with that {what}"),
            ));
        }
    }
    let common = |private: bool| {
        vec![
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ]
    };
    let mut public = common(false);
    public.push(Attribute::Verify(true));
    let mut private = common(true);
    private.extend([
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Derive(false),
        Attribute::Unwrap(false),
    ]);
    let mechanism = match key_type {
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let bits: u64 = match key_type {
                KeyType::Rsa2048 => 2048,
                KeyType::Rsa3072 => 3072,
                _ => 4096,
            };
            public.push(Attribute::ModulusBits(bits.into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        }
        KeyType::EcP256 | KeyType::EcP384 => {
            let params = if key_type == KeyType::EcP256 {
                token::EC_PARAMS_P256
            } else {
                token::EC_PARAMS_P384
            };
            public.push(Attribute::EcParams(params.to_vec()));
            Mechanism::EccKeyPairGen
        }
    };
    session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(|e| token::ck_error(e, &shown).context(format!("making a {key_type} key")))?;
    let mut made = uri.clone();
    made.object = Some(label.to_string());
    made.id = Some(id.to_vec());
    made.object_type = Some(ObjectType::Private);
    Ok(made)
}

/// A token and the key objects it shows.
#[derive(Debug, Clone)]
pub struct TokenListing {
    pub slot_id: u64,
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    /// The token's URI (module, token, manufacturer, model, serial).
    pub uri: Pkcs11Uri,
    /// Whether the listing was made logged in (private objects are then shown).
    pub logged_in: bool,
    pub keys: Vec<KeyObject>,
}

/// One key object of a token.
#[derive(Debug, Clone)]
pub struct KeyObject {
    /// `Private` or `Public`.
    pub class: ObjectType,
    pub label: String,
    pub id: Vec<u8>,
    /// gpki's key type name (`rsa2048`, `p256` …) or what the token says otherwise.
    pub kind: String,
    pub sensitive: Option<bool>,
    pub extractable: Option<bool>,
    pub always_sensitive: Option<bool>,
    pub never_extractable: Option<bool>,
    /// The URI that names this object.
    pub uri: Pkcs11Uri,
}

impl KeyObject {
    /// The id as lower-case hex, as `pkcs11-tool` shows it.
    pub fn id_hex(&self) -> String {
        hex::encode(&self.id)
    }
}

/// The tokens of the module `uri` names (narrowed by its token and slot
/// attributes) and their key objects. With a PIN each token is logged in, so
/// private keys are listed too.
pub fn list(uri: &Pkcs11Uri, pin: Option<&Pin>) -> Result<Vec<TokenListing>> {
    let shown = uri.to_string();
    let module = token::module_of(uri, &shown)?;
    let ctx = module.context().map_err(|e| token::ck_error(e, &shown))?;
    let slots = token::matching_slots(ctx.pkcs11(), uri).map_err(|e| token::ck_error(e, &shown))?;
    let mut out = Vec::new();
    for (slot, info) in slots {
        let token_uri = Pkcs11Uri {
            token: Some(info.label().to_string()),
            manufacturer: Some(info.manufacturer_id().to_string()),
            model: Some(info.model().to_string()),
            serial: Some(info.serial_number().to_string()),
            module_path: Some(module.path().to_path_buf()),
            pin_source: uri.pin_source.clone(),
            ..Default::default()
        };
        let token_shown = token_uri.to_string();
        let session = ctx
            .pkcs11()
            .open_ro_session(slot)
            .map_err(|e| token::ck_error(e, &token_shown))?;
        if let Some(pin) = pin {
            token::login(&session, pin).map_err(|e| token::ck_error(e, &token_shown))?;
        }
        let mut keys = Vec::new();
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            let handles = session
                .find_objects(&[Attribute::Class(class)])
                .map_err(|e| token::ck_error(e, &token_shown))?;
            for handle in handles {
                keys.push(key_object(
                    &session,
                    handle,
                    class,
                    &token_uri,
                    &token_shown,
                )?);
            }
        }
        keys.sort_by(|a, b| (&a.label, &a.id).cmp(&(&b.label, &b.id)));
        out.push(TokenListing {
            slot_id: slot.id(),
            label: info.label().to_string(),
            manufacturer: info.manufacturer_id().to_string(),
            model: info.model().to_string(),
            serial: info.serial_number().to_string(),
            uri: token_uri,
            logged_in: pin.is_some(),
            keys,
        });
    }
    Ok(out)
}

fn key_object(
    session: &Session,
    handle: ObjectHandle,
    class: ObjectClass,
    token_uri: &Pkcs11Uri,
    shown: &str,
) -> Result<KeyObject> {
    let facts = token::key_facts(session, handle).map_err(|e| token::ck_error(e, shown))?;
    let is_private = class == ObjectClass::PRIVATE_KEY;
    let kind = token::key_kind(&facts);
    let class_type = if is_private {
        ObjectType::Private
    } else {
        ObjectType::Public
    };
    let label = String::from_utf8_lossy(&facts.label).into_owned();
    let mut uri = token_uri.clone();
    uri.object = Some(label.clone());
    uri.id = Some(facts.id.clone());
    uri.object_type = Some(class_type);
    Ok(KeyObject {
        class: class_type,
        label,
        id: facts.id.clone(),
        kind,
        sensitive: if is_private { facts.sensitive } else { None },
        extractable: if is_private { facts.extractable } else { None },
        always_sensitive: if is_private {
            facts.always_sensitive
        } else {
            None
        },
        never_extractable: if is_private {
            facts.never_extractable
        } else {
            None
        },
        uri,
    })
}
