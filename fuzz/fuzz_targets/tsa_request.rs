//! The TSA's TimeStampReq decoder and checks (`gpki_tsa::token::check_request`).
#![no_main]
const POLICY: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.2.410.100001.2.1.5");
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gpki_tsa::token::check_request(data, &POLICY);
});
