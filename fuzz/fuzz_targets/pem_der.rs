//! PEM/DER loading of certificates, CRLs and public keys as the CLI and services
//! read files: `gpki_pki::pem`, certificate decoding, key classification.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(der) = gpki_pki::pem::decode_pem_or_der(data, &["CERTIFICATE", "X509 CRL"]) {
        let _ = gpki_pki::cert::decode(&der);
    }
    let _ = gpki_pki::cert::decode(data);
    let _ = gpki_pki::KeyType::of_spki(data);
});
