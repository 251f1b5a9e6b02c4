// One key, one encoding: an RSA SPKI without NULL parameters is refused, so the
// compromised-key check cannot be dodged by re-encoding the same key.
#[test]
fn rsa_spki_parameters_must_be_null() {
    let key = SoftwareKey::generate(KeyType::Rsa2048).unwrap();
    let good = key.public_key_der().to_vec();
    assert_eq!(KeyType::of_spki(&good).unwrap(), KeyType::Rsa2048);
    let mut spki = spki_from_der(&good).unwrap();
    spki.algorithm.parameters = None;
    let absent = spki.to_der().unwrap();
    let err = KeyType::of_spki(&absent).unwrap_err();
    assert!(err.detail.contains("must be NULL"), "{err}");
    spki.algorithm.parameters = Some(der::Any::encode_from(&0u8).unwrap());
    assert!(KeyType::of_spki(&spki.to_der().unwrap()).is_err());
}

use super::*;
use crate::error::ErrorKind;

#[test]
fn every_algorithm_signs_and_verifies() {
    for key_type in [KeyType::Rsa2048, KeyType::EcP256, KeyType::EcP384] {
        for alg in SignatureAlgorithm::ALL
            .into_iter()
            .filter(|a| a.fits(key_type))
        {
            let key = SoftwareKey::generate(key_type)
                .unwrap()
                .with_algorithm(alg)
                .unwrap();
            let sig = key.sign(b"tbs").unwrap();
            assert!(
                verify(key.public_key_der(), alg, b"tbs", &sig).unwrap(),
                "{alg}"
            );
            assert!(
                !verify(key.public_key_der(), alg, b"tbS", &sig).unwrap(),
                "{alg}"
            );
            assert_eq!(
                SignatureAlgorithm::from_identifier(&alg.identifier()),
                Some(alg)
            );
        }
    }
}

#[test]
fn identifier_verification_agrees_with_evp() {
    for key_type in [KeyType::Rsa2048, KeyType::EcP256, KeyType::EcP384] {
        for alg in SignatureAlgorithm::ALL
            .into_iter()
            .filter(|a| a.fits(key_type))
        {
            let key = SoftwareKey::generate(key_type)
                .unwrap()
                .with_algorithm(alg)
                .unwrap();
            let spki = spki_from_der(key.public_key_der()).unwrap();
            let sig = key.sign(b"request info").unwrap();
            assert!(
                verify_with_identifier(&spki, &alg.identifier(), b"request info", &sig).unwrap(),
                "{alg}"
            );
            assert!(
                !verify_with_identifier(&spki, &alg.identifier(), b"request inf0", &sig).unwrap(),
                "{alg}"
            );
            let mut bad = sig.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(
                !verify_with_identifier(&spki, &alg.identifier(), b"request info", &bad).unwrap(),
                "{alg}"
            );
        }
    }
}

#[test]
fn wrong_passphrase_and_damaged_file_are_told_apart() {
    let key = SoftwareKey::generate(KeyType::EcP256).unwrap();
    let pem = key.to_encrypted_pem(&Passphrase::new("right")).unwrap();
    let err = SoftwareKey::from_encrypted_pem(&pem, &Passphrase::new("wrong")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::WrongPassphrase);
    let text = String::from_utf8(pem.clone()).unwrap();
    let damaged = text.replacen("MI", "MX", 1);
    let err =
        SoftwareKey::from_encrypted_pem(damaged.as_bytes(), &Passphrase::new("right")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    let back = SoftwareKey::from_encrypted_pem(&pem, &Passphrase::new("right")).unwrap();
    assert_eq!(back.public_key_der(), key.public_key_der());
    assert!(!format!("{back:?}").contains("BEGIN"));
}

#[test]
fn key_file_is_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.key.pem");
    let key = SoftwareKey::generate(KeyType::EcP256).unwrap();
    key.write_encrypted(&path, &Passphrase::new("pw")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let err = key
        .write_encrypted(&path, &Passphrase::new("pw"))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
}
