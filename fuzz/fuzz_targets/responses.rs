//! What `gpki ts verify` and `gpki ocsp query` decode from outside: TimeStampResp
//! and CMS tokens, OCSP responses, certificates and CRLs (the decoders they call).
#![no_main]
use der::Decode;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = x509_tsp::TimeStampResp::from_der(data) {
        if let Some(token) = resp.time_stamp_token {
            if let Ok(sd) = token.content.decode_as::<cms::signed_data::SignedData>() {
                if let Some(e) = sd.encap_content_info.econtent {
                    let _ = x509_tsp::TstInfo::from_der(e.value());
                }
            }
        }
    }
    let _ = x509_ocsp::OcspResponse::from_der(data);
    let _ = openssl::ocsp::OcspResponse::from_der(data);
    let _ = openssl::x509::X509::from_der(data);
    let _ = openssl::x509::X509Crl::from_der(data);
});
