//! CSR decoding and proof-of-possession verification (`gpki_pki::csr`), PEM or DER.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gpki_pki::csr::parse_and_verify(data);
});
