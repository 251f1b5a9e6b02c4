//! [`Pkcs11Key`]: a [`Signer`] whose private key stays in a PKCS #11 token.
//!
//! Sessions: cryptoki's `Session` is `Send` but not `Sync` (PKCS #11 sessions are
//! not to be used by two threads at once), so each key keeps a pool of sessions
//! behind a mutex: a signing thread takes one (or opens one), signs, and gives it
//! back. As many sessions exist as threads ever signed at once, and each is used by
//! one thread at a time. Login is per token and application: a new session is
//! logged in only if the token is not already (`CKR_USER_ALREADY_LOGGED_IN` is
//! success).
//!
//! A token that goes away (`CKR_DEVICE_ERROR`, `CKR_SESSION_HANDLE_INVALID`,
//! `CKR_TOKEN_NOT_PRESENT`, `CKR_USER_NOT_LOGGED_IN`, a key handle or key that is
//! gone …) fails the signature at once with [`ErrorKind::Unavailable`] naming the
//! URI; the sessions are dropped, and a later call reconnects: the token is looked
//! for again (re-initialising the module if it is not listed), logged in, the key
//! found again and its public key compared with the one read at start. Reconnects
//! are spaced by a doubling backoff, and calls inside it fail fast, so a dead token
//! is not hammered and callers are not held.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use gpki_pki::{Error, ErrorKind, KeyType, Result, SignatureAlgorithm, Signer};
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;

use crate::module::{Context, Module};
use crate::token::{self, Lookup};
use crate::uri::{Pin, Pkcs11Uri};

/// The first wait before a reconnect, and the longest.
pub const DEFAULT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(250), Duration::from_secs(30));

/// A private key in a PKCS #11 token, named by an RFC 7512 URI.
pub struct Pkcs11Key {
    uri: Pkcs11Uri,
    /// The URI as written in errors (no PIN can be in it).
    shown: String,
    module: Arc<Module>,
    pin: Pin,
    key_type: KeyType,
    algorithm: SignatureAlgorithm,
    spki: Vec<u8>,
    binding: Mutex<Option<Binding>>,
    sessions: Mutex<Vec<Pooled>>,
    health: Mutex<Health>,
    backoff: (Duration, Duration),
}

/// Where the key is in one generation of the module's context.
#[derive(Clone, Copy)]
struct Binding {
    generation: u64,
    slot: Slot,
    key: ObjectHandle,
}

struct Pooled {
    generation: u64,
    session: Session,
}

#[derive(Default)]
struct Health {
    /// Set while the token is taken as gone.
    down_since: Option<Instant>,
    failures: u32,
    next_attempt: Option<Instant>,
    last: String,
}

/// How a signing attempt failed.
enum Failure {
    /// The token, session or key went away: unavailable, reconnect later.
    Gone(String),
    /// Anything else, reported as it is.
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        if e.kind == ErrorKind::Unavailable {
            Failure::Gone(e.detail)
        } else {
            Failure::Other(e)
        }
    }
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("uri", &self.shown)
            .field("key_type", &self.key_type)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// Opens the key `uri` names, logging in with `pin`. Fails at once, naming the
    /// URI, on a wrong PIN (Unauthorized), a token or key that is not there
    /// (NotFound), or a key that could leave the token (PolicyViolation).
    pub fn open(uri: &Pkcs11Uri, pin: Pin) -> Result<Pkcs11Key> {
        let shown = uri.to_string();
        token::check_key_uri(uri, &shown)?;
        let module = token::module_of(uri, &shown)?;
        let mut key = Pkcs11Key {
            uri: uri.clone(),
            shown,
            module,
            pin,
            key_type: KeyType::EcP256,
            algorithm: SignatureAlgorithm::EcdsaSha256,
            spki: Vec::new(),
            binding: Mutex::new(None),
            sessions: Mutex::new(Vec::new()),
            health: Mutex::new(Health::default()),
            backoff: DEFAULT_BACKOFF,
        };
        let mut refreshed = false;
        let (ctx, (binding, session, spki, key_type)) = loop {
            let ctx = key
                .module
                .context()
                .map_err(|e| token::ck_error(e, &key.shown))?;
            match key.resolve(&ctx)? {
                Lookup::Found(found) => break (ctx, found),
                Lookup::Missing(why) if refreshed => return Err(Error::not_found(why)),
                Lookup::Missing(_) => {
                    // The module may list only the tokens it saw at C_Initialize
                    // (SoftHSM): look once more in a fresh context.
                    let generation = ctx.generation();
                    drop(ctx);
                    key.module
                        .reinitialise(generation)
                        .map_err(|e| token::ck_error(e, &key.shown))?;
                    refreshed = true;
                }
            }
        };
        key.key_type = key_type;
        key.algorithm = key_type.default_signature_algorithm();
        key.spki = spki;
        *key.binding.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(binding);
        key.sessions
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .push(Pooled {
                generation: binding.generation,
                session,
            });
        drop(ctx);
        Ok(key)
    }

    /// Chooses the signature algorithm; refuses one the key cannot make.
    pub fn with_algorithm(mut self, algorithm: SignatureAlgorithm) -> Result<Pkcs11Key> {
        if !algorithm.fits(self.key_type) {
            return Err(Error::policy(format!(
                "{}: signature algorithm {algorithm} does not fit a {} key",
                self.shown, self.key_type
            )));
        }
        self.algorithm = algorithm;
        Ok(self)
    }

    /// Sets the first and the longest wait between reconnect attempts.
    pub fn with_backoff(mut self, first: Duration, longest: Duration) -> Pkcs11Key {
        self.backoff = (first, longest.max(first));
        self
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// Finds the token, logs in, finds the key and reads its public key. Missing
    /// things are `Lookup::Missing`; PKCS #11 failures are errors.
    #[allow(clippy::type_complexity)]
    fn resolve(&self, ctx: &Context<'_>) -> Result<Lookup<(Binding, Session, Vec<u8>, KeyType)>> {
        let shown = &self.shown;
        let slot = match token::find_slot(ctx.pkcs11(), &self.uri, shown)? {
            Lookup::Found(s) => s,
            Lookup::Missing(why) => return Ok(Lookup::Missing(why)),
        };
        let session = ctx
            .pkcs11()
            .open_ro_session(slot)
            .map_err(|e| token::ck_error(e, shown))?;
        token::login(&session, &self.pin).map_err(|e| token::ck_error(e, shown))?;
        let key = match token::find_private_key(&session, &self.uri, shown)? {
            Lookup::Found(k) => k,
            Lookup::Missing(why) => return Ok(Lookup::Missing(why)),
        };
        let facts = token::key_facts(&session, key).map_err(|e| token::ck_error(e, shown))?;
        token::check_kept_in_token(&facts, shown)?;
        let (spki, key_type) = match token::public_key_info(&session, &facts, shown)? {
            Lookup::Found(p) => p,
            Lookup::Missing(why) => return Ok(Lookup::Missing(why)),
        };
        let binding = Binding {
            generation: ctx.generation(),
            slot,
            key,
        };
        Ok(Lookup::Found((binding, session, spki, key_type)))
    }

    /// The key's place in the current generation, found again when it changed or
    /// was dropped after a failure. A key found again must be the key of start.
    fn binding(&self, ctx: &Context<'_>) -> std::result::Result<Binding, Failure> {
        if let Some(b) = *self.binding.lock().unwrap_or_else(|e| e.into_inner()) {
            if b.generation == ctx.generation() {
                return Ok(b);
            }
        }
        let (binding, session, spki, _) = match self.resolve(ctx)? {
            Lookup::Found(found) => found,
            Lookup::Missing(why) => return Err(Failure::Gone(why)),
        };
        if spki != self.spki {
            // A different key under the same name (another token, a key made
            // again): signatures would not verify against the certificate.
            return Err(Failure::Gone(format!(
                "{}: the token now holds a different key under this name; not signing with it",
                self.shown
            )));
        }
        self.give_back(binding.generation, session);
        *self.binding.lock().unwrap_or_else(|e| e.into_inner()) = Some(binding);
        Ok(binding)
    }

    fn take_session(&self, ctx: &Context<'_>, slot: Slot) -> std::result::Result<Session, CkError> {
        let generation = ctx.generation();
        {
            let mut pool = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            while let Some(p) = pool.pop() {
                if p.generation == generation {
                    return Ok(p.session);
                }
                // Opened in an older context: its handle may now be someone
                // else's session, so it is not closed.
                std::mem::forget(p.session);
            }
        }
        let session = ctx.pkcs11().open_ro_session(slot)?;
        token::login(&session, &self.pin)?;
        Ok(session)
    }

    fn give_back(&self, generation: u64, session: Session) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Pooled {
                generation,
                session,
            });
    }

    /// Forgets where the key is and closes the sessions (under the context of
    /// their generation).
    fn drop_sessions(&self, ctx: &Context<'_>) {
        *self.binding.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let pooled = std::mem::take(&mut *self.sessions.lock().unwrap_or_else(|e| e.into_inner()));
        for p in pooled {
            if p.generation == ctx.generation() {
                drop(p.session);
            } else {
                std::mem::forget(p.session);
            }
        }
    }

    /// One attempt: find the key (again), take a session, sign.
    fn sign_once(
        &self,
        mechanism: &Mechanism,
        input: &[u8],
    ) -> std::result::Result<Vec<u8>, Failure> {
        let mut restarted = false;
        loop {
            let ctx = self
                .module
                .context()
                .map_err(|e| Failure::from(token::ck_error(e, &self.shown)))?;
            match self.binding(&ctx) {
                Ok(binding) => return self.sign_with(&ctx, binding, mechanism, input),
                Err(Failure::Gone(why)) => {
                    self.drop_sessions(&ctx);
                    if restarted {
                        return Err(Failure::Gone(why));
                    }
                    // A module that lists tokens only at C_Initialize (SoftHSM)
                    // shows a token that came back only in a new context.
                    let generation = ctx.generation();
                    drop(ctx);
                    let _ = self.module.reinitialise(generation);
                    restarted = true;
                }
                Err(other) => return Err(other),
            }
        }
    }

    fn sign_with(
        &self,
        ctx: &Context<'_>,
        binding: Binding,
        mechanism: &Mechanism,
        input: &[u8],
    ) -> std::result::Result<Vec<u8>, Failure> {
        let session = match self.take_session(ctx, binding.slot) {
            Ok(s) => s,
            Err(e) => {
                self.drop_sessions(ctx);
                return Err(token::ck_error(e, &self.shown).into());
            }
        };
        match session.sign(mechanism, binding.key, input) {
            Ok(signature) => {
                self.give_back(binding.generation, session);
                Ok(signature)
            }
            Err(e) => {
                let err = token::ck_error(e, &self.shown);
                if err.kind == ErrorKind::Unavailable {
                    drop(session);
                    self.drop_sessions(ctx);
                } else {
                    self.give_back(binding.generation, session);
                }
                Err(err.into())
            }
        }
    }

    /// Before an attempt: inside the backoff after a failure, fail fast.
    fn may_attempt(&self) -> Result<()> {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if health.down_since.is_none() {
            return Ok(());
        }
        let now = Instant::now();
        if let Some(at) = health.next_attempt {
            if now < at {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "{}; next reconnect attempt in {} ms",
                        health.last,
                        (at - now).as_millis()
                    ),
                ));
            }
        }
        // This caller reconnects; the others wait out one more backoff.
        health.next_attempt = Some(now + self.wait(health.failures + 1));
        Ok(())
    }

    fn wait(&self, failures: u32) -> Duration {
        let (first, longest) = self.backoff;
        first
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(longest)
    }

    fn went_down(&self, why: String) -> Error {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        health.down_since.get_or_insert(now);
        health.failures = health.failures.saturating_add(1);
        health.next_attempt = Some(now + self.wait(health.failures));
        health.last = why.clone();
        Error::new(ErrorKind::Unavailable, why)
    }

    fn came_back(&self) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if health.down_since.is_some() {
            *health = Health::default();
        }
    }

    /// The mechanism and the input the token signs, hashed here: SoftHSM 2.6 (and
    /// many tokens) have CKM_ECDSA but not CKM_ECDSA_SHA256.
    fn token_input(&self, message: &[u8]) -> (Mechanism<'static>, Vec<u8>) {
        use SignatureAlgorithm as A;
        match self.algorithm {
            A::RsaPkcs1Sha256 => (Mechanism::RsaPkcs, digest_info(Hash::Sha256, message)),
            A::RsaPkcs1Sha384 => (Mechanism::RsaPkcs, digest_info(Hash::Sha384, message)),
            A::RsaPkcs1Sha512 => (Mechanism::RsaPkcs, digest_info(Hash::Sha512, message)),
            // RFC 4055 §3.1 as gpki writes it: MGF1 with the same hash, salt as
            // long as the hash.
            A::RsaPssSha256 => (
                Mechanism::RsaPkcsPss(PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32u64.into(),
                }),
                Hash::Sha256.digest(message),
            ),
            A::RsaPssSha384 => (
                Mechanism::RsaPkcsPss(PkcsPssParams {
                    hash_alg: MechanismType::SHA384,
                    mgf: PkcsMgfType::MGF1_SHA384,
                    s_len: 48u64.into(),
                }),
                Hash::Sha384.digest(message),
            ),
            A::EcdsaSha256 => (Mechanism::Ecdsa, Hash::Sha256.digest(message)),
            A::EcdsaSha384 => (Mechanism::Ecdsa, Hash::Sha384.digest(message)),
        }
    }

    /// The token's output as it goes in the BIT STRING: ECDSA's r‖s becomes the
    /// DER Ecdsa-Sig-Value of RFC 3279 §2.2.3 (X.509, CMS and OCSP all want it).
    fn finish(&self, raw: Vec<u8>) -> Result<Vec<u8>> {
        if self.key_type.is_rsa() {
            return Ok(raw);
        }
        let half = if self.key_type == KeyType::EcP384 {
            48
        } else {
            32
        };
        if raw.len() != 2 * half {
            return Err(Error::internal(format!(
                "{}: the token returned an ECDSA signature of {} bytes, not r‖s of {}",
                self.shown,
                raw.len(),
                2 * half
            )));
        }
        let r = BigNum::from_slice(&raw[..half]);
        let s = BigNum::from_slice(&raw[half..]);
        let der = r
            .and_then(|r| s.and_then(|s| EcdsaSig::from_private_components(r, s)))
            .and_then(|sig| sig.to_der())
            .map_err(|e| {
                Error::internal(format!("{}: ECDSA signature encoding: {e}", self.shown))
            })?;
        Ok(der)
    }
}

impl Signer for Pkcs11Key {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.may_attempt()?;
        let (mechanism, input) = self.token_input(message);
        match self.sign_once(&mechanism, &input) {
            Ok(raw) => {
                self.came_back();
                self.finish(raw)
            }
            Err(Failure::Gone(why)) => Err(self.went_down(why)),
            Err(Failure::Other(e)) => Err(e),
        }
    }
}

impl Drop for Pkcs11Key {
    fn drop(&mut self) {
        let pooled = std::mem::take(self.sessions.get_mut().unwrap_or_else(|e| e.into_inner()));
        match self.module.context() {
            Ok(ctx) => {
                for p in pooled {
                    if p.generation == ctx.generation() {
                        drop(p.session);
                    } else {
                        std::mem::forget(p.session);
                    }
                }
            }
            Err(_) => pooled.into_iter().for_each(|p| std::mem::forget(p.session)),
        }
    }
}

#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => openssl::sha::sha256(message).to_vec(),
            Hash::Sha384 => openssl::sha::sha384(message).to_vec(),
            Hash::Sha512 => openssl::sha::sha512(message).to_vec(),
        }
    }
}

/// RFC 8017 §9.2 step 2: the DER DigestInfo CKM_RSA_PKCS pads and signs. The
/// prefixes are RFC 8017 §9.2 note 1.
fn digest_info(hash: Hash, message: &[u8]) -> Vec<u8> {
    const SHA256: &[u8] = &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    const SHA384: &[u8] = &[
        0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
        0x05, 0x00, 0x04, 0x30,
    ];
    const SHA512: &[u8] = &[
        0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
        0x05, 0x00, 0x04, 0x40,
    ];
    let prefix = match hash {
        Hash::Sha256 => SHA256,
        Hash::Sha384 => SHA384,
        Hash::Sha512 => SHA512,
    };
    let mut out = prefix.to_vec();
    out.extend_from_slice(&hash.digest(message));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_info_is_the_der_openssl_writes() {
        // An independent DER: DigestInfo built with the der crate's types.
        use der::Encode;
        for (hash, oid, len) in [
            (Hash::Sha256, "2.16.840.1.101.3.4.2.1", 32),
            (Hash::Sha384, "2.16.840.1.101.3.4.2.2", 48),
            (Hash::Sha512, "2.16.840.1.101.3.4.2.3", 64),
        ] {
            let got = digest_info(hash, b"m");
            let alg = spki::AlgorithmIdentifierOwned {
                oid: oid.parse().unwrap(),
                parameters: Some(der::asn1::Null.into()),
            };
            let digest = der::asn1::OctetString::new(hash.digest(b"m")).unwrap();
            let mut want = Vec::new();
            let body = [alg.to_der().unwrap(), digest.to_der().unwrap()].concat();
            der::Header::new(
                der::Tag::Sequence,
                der::Length::try_from(body.len()).unwrap(),
            )
            .unwrap()
            .encode_to_vec(&mut want)
            .unwrap();
            want.extend_from_slice(&body);
            assert_eq!(got, want);
            assert_eq!(got.len(), 19 + len);
        }
    }
}
