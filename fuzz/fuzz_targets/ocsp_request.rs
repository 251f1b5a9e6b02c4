//! The OCSP responder's request walker (`gpki_ocsp::request::parse`): every POST
//! body and every GET path's base64 reaches it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gpki_ocsp::request::parse(data, 16);
});
