//! Certificate login: the relying system hands out a challenge, the official
//! signs it with the key of their certificate, and the system checks the
//! signature, the certificate's path to an anchor, its purpose (digitalSignature,
//! clientAuth) and the status of every certificate on the path.
//!
//! A challenge is stateless until used: `v1.` + base64url(16 random octets, the
//! expiry as 8 octets) + `.` + base64url(the first 16 octets of HMAC-SHA-256 of
//! the audience and those 24 octets under a key of this process). What is signed
//! is [`message`]: the audience and the challenge in three lines, so a login
//! signature can never be taken for a document or another system's login. A
//! challenge is spent by its first successful signature check: replayed, it is
//! refused. The key is drawn by each process and never leaves it, so a challenge
//! is good only at the process that handed it out, and not after a restart: its
//! spent set, in memory, is the whole record (behind a load balancer, keep a
//! client on one instance).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gpki_pki::{Error, Result, SignatureAlgorithm};
use openssl::hash::MessageDigest;
use openssl::memcmp;
use openssl::pkey::{PKey, Private};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::trust::Purpose;
use crate::verifier::{CertificateReport, Verifier};
use crate::{Reason, Refusal};

/// Spent challenges remembered at most (until they expire): past this, logins
/// are refused rather than a replay let through.
const MAX_SPENT: usize = 1 << 20;

/// A challenge handed out.
#[derive(Debug, Clone, Serialize)]
pub struct Challenge {
    pub challenge: String,
    pub audience: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The exact text to sign.
    pub message: String,
}

/// What a login carries.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    pub challenge: String,
    /// The official's certificate, DER.
    pub certificate: Vec<u8>,
    /// Certificates toward the anchor the client offers (may be empty).
    pub chain: Vec<Vec<u8>>,
    pub signature: Vec<u8>,
    /// The signature algorithm; the key's usual one when absent (ECDSA with the
    /// curve's hash, RSA PKCS#1 v1.5 with SHA-256).
    pub algorithm: Option<SignatureAlgorithm>,
}

/// A login accepted.
#[derive(Debug, Clone, Serialize)]
pub struct LoginReport {
    pub result: &'static str,
    pub audience: String,
    pub algorithm: &'static str,
    #[serde(flatten)]
    pub certificate: CertificateReport,
}

/// The text an official signs to log in with `challenge` at `audience`.
pub fn message(audience: &str, challenge: &str) -> String {
    format!("gpki login v1\naudience: {audience}\nchallenge: {challenge}\n")
}

/// The login text as the official's side builds it: from the challenge and the
/// audience the client itself logs in to, never from a text the server sends.
/// A challenge of another shape (a line break, another statement smuggled in as
/// the challenge) or an audience that is not one URL is refused before anything
/// is signed, so a login signature can mean nothing else: not a holder's
/// revocation, an officer's approval or a document, whose texts begin with
/// their own first lines and are built by their own signers.
pub fn client_message(audience: &str, challenge: &str) -> Result<String> {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    if challenge.len() > 128 || !challenge.strip_prefix("v1.").is_some_and(token) {
        return Err(Error::malformed(
            "the challenge is not a gpki login challenge (v1. and base64url): nothing signed",
        ));
    }
    let url = audience
        .strip_prefix("https://")
        .or_else(|| audience.strip_prefix("http://"));
    if audience.len() > 512
        || !url.is_some_and(|u| !u.is_empty() && u.bytes().all(|b| (0x21..0x7f).contains(&b)))
    {
        return Err(Error::malformed(
            "the audience must be the http(s) URL of the system logged in to, on one line: nothing signed",
        ));
    }
    Ok(message(audience, challenge))
}

/// Hands out and checks challenges for one audience, and logs officials in.
pub struct Login {
    verifier: Arc<Verifier>,
    audience: String,
    ttl: i64,
    key: PKey<Private>,
    spent: Mutex<HashMap<[u8; 16], i64>>,
}

impl Login {
    /// `audience` names the relying system (its URL); challenges live `ttl`
    /// seconds.
    pub fn new(verifier: Arc<Verifier>, audience: &str, ttl: i64) -> Result<Login> {
        Login::with_key(verifier, audience, ttl, None)
    }

    /// [`Login::new`] with the MAC key given (tests: two audiences, one key).
    fn with_key(
        verifier: Arc<Verifier>,
        audience: &str,
        ttl: i64,
        key: Option<&[u8]>,
    ) -> Result<Login> {
        if audience.is_empty() || audience.contains(['\n', '\r']) {
            return Err(Error::malformed(
                "the login audience must be one non-empty line",
            ));
        }
        if !(10..=3600).contains(&ttl) {
            return Err(Error::malformed(
                "the challenge lifetime must be 10 to 3600 seconds",
            ));
        }
        let mut random = Zeroizing::new([0u8; 32]);
        let key = match key {
            Some(k) if k.len() >= 32 => k,
            Some(_) => {
                return Err(Error::malformed(
                    "the challenge key must be 32 octets or more",
                ))
            }
            None => {
                openssl::rand::rand_bytes(&mut random[..])
                    .map_err(|e| Error::internal(format!("CSPRNG: {e}")))?;
                &random[..]
            }
        };
        Ok(Login {
            verifier,
            audience: audience.to_string(),
            ttl,
            key: PKey::hmac(key).map_err(|e| Error::internal(format!("HMAC key: {e}")))?,
            spent: Mutex::new(HashMap::new()),
        })
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    fn mac(&self, payload: &[u8]) -> Result<[u8; 16]> {
        let ossl = |e: openssl::error::ErrorStack| Error::internal(format!("HMAC: {e}"));
        let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), &self.key).map_err(ossl)?;
        s.update(b"gpki login challenge v1\n").map_err(ossl)?;
        s.update(self.audience.as_bytes()).map_err(ossl)?;
        s.update(b"\n").map_err(ossl)?;
        s.update(payload).map_err(ossl)?;
        let full = s.sign_to_vec().map_err(ossl)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        Ok(out)
    }

    /// A fresh challenge.
    pub fn challenge(&self) -> Result<Challenge> {
        let expires_at = gpki_pki::time::now() + self.ttl;
        let mut payload = [0u8; 24];
        openssl::rand::rand_bytes(&mut payload[..16])
            .map_err(|e| Error::internal(format!("CSPRNG: {e}")))?;
        payload[16..].copy_from_slice(&expires_at.to_be_bytes());
        let challenge = format!(
            "v1.{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(self.mac(&payload)?)
        );
        Ok(Challenge {
            message: message(&self.audience, &challenge),
            challenge,
            audience: self.audience.clone(),
            expires_at,
        })
    }

    /// The nonce and expiry of a challenge this process handed out.
    fn open(&self, challenge: &str, now: i64) -> std::result::Result<([u8; 16], i64), Refusal> {
        let invalid = || {
            Refusal::new(
                Reason::ChallengeInvalid,
                "the challenge was not handed out here (or is for another audience)",
            )
        };
        let mut parts = challenge.split('.');
        let (Some("v1"), Some(p), Some(m), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| invalid())?;
        let mac = URL_SAFE_NO_PAD.decode(m).map_err(|_| invalid())?;
        if payload.len() != 24 || mac.len() != 16 {
            return Err(invalid());
        }
        let want = self
            .mac(&payload)
            .map_err(|e| Refusal::new(Reason::Malformed, e.detail))?;
        if !memcmp::eq(&want, &mac) {
            return Err(invalid());
        }
        let expires_at = i64::from_be_bytes(payload[16..].try_into().expect("8 octets"));
        if now > expires_at {
            return Err(Refusal::new(
                Reason::ChallengeExpired,
                format!(
                    "the challenge expired at {}; ask for a new one",
                    gpki_pki::time::rfc3339(expires_at)
                ),
            ));
        }
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&payload[..16]);
        Ok((nonce, expires_at))
    }

    /// Marks a challenge used; refuses one used before.
    fn spend(
        &self,
        nonce: [u8; 16],
        expires_at: i64,
        now: i64,
    ) -> std::result::Result<(), Refusal> {
        let mut spent = self.spent.lock().expect("spent challenges");
        if spent.len() >= MAX_SPENT {
            spent.retain(|_, e| *e >= now);
            if spent.len() >= MAX_SPENT {
                return Err(Refusal::new(
                    Reason::StatusUnknown,
                    "too many logins in flight to remember their challenges; try again shortly",
                ));
            }
        }
        if spent.insert(nonce, expires_at).is_some() {
            return Err(Refusal::new(
                Reason::ChallengeReused,
                "the challenge was used already; ask for a new one",
            ));
        }
        Ok(())
    }

    /// Logs an official in, or says why not.
    pub async fn login(&self, req: &LoginRequest) -> std::result::Result<LoginReport, Refusal> {
        let now = gpki_pki::time::now();
        let (nonce, expires_at) = self.open(&req.challenge, now)?;
        let path = self.verifier.trust.path(&req.certificate, &req.chain)?;
        path.check_purpose(Purpose::Login)?;
        let key = &path.leaf.key;
        let algorithm = req.algorithm.unwrap_or_else(|| key.default_algorithm());
        let text = message(&self.audience, &req.challenge);
        let ok = key
            .verify(algorithm, text.as_bytes(), &req.signature)
            .map_err(|e| Refusal::new(Reason::BadSignature, e.detail))?;
        if !ok {
            return Err(Refusal::new(
                Reason::BadSignature,
                format!(
                    "the signature is not `{}`'s over this challenge ({algorithm})",
                    path.leaf.subject
                ),
            ));
        }
        self.spend(nonce, expires_at, now)?;
        let answers = self.verifier.path_status(&path).await?;
        Ok(LoginReport {
            result: "accepted",
            audience: self.audience.clone(),
            algorithm: algorithm.as_str(),
            certificate: crate::verifier::report(&path, &answers),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StatusPolicy;
    use crate::trust::Trust;

    /// The client builds the login text itself and refuses a challenge or an
    /// audience that could carry another statement.
    #[test]
    fn the_client_builds_the_login_text_and_nothing_else() {
        let m = client_message("https://intranet.mois.go.kr/login", "v1.AAAA_b-c.DDDD").unwrap();
        assert_eq!(
            m,
            "gpki login v1\naudience: https://intranet.mois.go.kr/login\nchallenge: v1.AAAA_b-c.DDDD\n"
        );
        let revocation = "gpki holder revocation request v1\ncertificate-sha256: 00\nreason: keyCompromise\nsigned_at: 1\n";
        for (audience, challenge) in [
            ("https://a.go.kr/", revocation),
            ("https://a.go.kr/", "v1.x\nreason: keyCompromise"),
            ("https://a.go.kr/", "v2.abc"),
            ("https://a.go.kr/", "v1."),
            ("https://a.go.kr/", &format!("v1.{}", "A".repeat(200))),
            ("https://a.go.kr/\nchallenge: v1.x", "v1.abc"),
            ("gpki holder revocation request v1", "v1.abc"),
            ("https:// a.go.kr/", "v1.abc"),
            ("https://", "v1.abc"),
        ] {
            assert!(
                client_message(audience, challenge).is_err(),
                "{audience:?} {challenge:?}"
            );
        }
    }

    fn login(audience: &str, key: &[u8]) -> Login {
        let k = gpki_pki::SoftwareKey::generate(gpki_pki::KeyType::EcP256).unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "anchor").unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(k.pkey()).unwrap();
        b.sign(k.pkey(), MessageDigest::sha256()).unwrap();
        let trust = Trust::new(vec![b.build()], Vec::new()).unwrap();
        let verifier = Arc::new(Verifier::new(trust, StatusPolicy::default()).unwrap());
        Login::with_key(verifier, audience, 60, Some(key)).unwrap()
    }

    #[test]
    fn a_challenge_opens_once_here_and_nowhere_else() {
        let key = [7u8; 32];
        let a = login("https://a.go.kr/", &key);
        let c = a.challenge().unwrap();
        assert!(c
            .message
            .ends_with(&format!("challenge: {}\n", c.challenge)));
        let now = gpki_pki::time::now();
        let (nonce, exp) = a.open(&c.challenge, now).unwrap();
        a.spend(nonce, exp, now).unwrap();
        assert_eq!(
            a.spend(nonce, exp, now).unwrap_err().reason,
            Reason::ChallengeReused
        );
        // Another audience with the same key, or another key: not handed out there.
        let b = login("https://b.go.kr/", &key);
        assert_eq!(
            b.open(&c.challenge, now).unwrap_err().reason,
            Reason::ChallengeInvalid
        );
        let other = login("https://a.go.kr/", &[8u8; 32]);
        assert_eq!(
            other.open(&c.challenge, now).unwrap_err().reason,
            Reason::ChallengeInvalid
        );
        assert_eq!(
            a.open(&c.challenge, c.expires_at + 1).unwrap_err().reason,
            Reason::ChallengeExpired
        );
        for garbage in [
            "",
            "v1",
            "v1..",
            "v2.AAAA.AAAA",
            "v1.!!!.AAAA",
            &format!("{}x", c.challenge),
        ] {
            assert_eq!(
                a.open(garbage, now).unwrap_err().reason,
                Reason::ChallengeInvalid,
                "{garbage}"
            );
        }
    }

    #[test]
    fn audiences_and_lifetimes_are_checked() {
        let key = [7u8; 32];
        let anchor = login("x", &key).verifier.clone();
        assert!(Login::new(anchor.clone(), "a\nb", 60).is_err());
        assert!(Login::new(anchor.clone(), "", 60).is_err());
        assert!(Login::new(anchor.clone(), "a", 5).is_err());
        assert!(Login::with_key(anchor, "a", 60, Some(&[1u8; 8])).is_err());
    }
}
