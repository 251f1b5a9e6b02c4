use super::*;
use gpki_pki::ErrorKind;

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// RFC 7512 §3.3's examples naming objects, keys and a module (the first
/// seven, in the RFC's order), with the fields each should give; the one with
/// pin-value is refused by design (see the module doc).
fn objects_and_modules() -> Vec<(&'static str, Option<Pkcs11Uri>)> {
    vec![
        ("pkcs11:", Some(Pkcs11Uri::default())),
        (
            "pkcs11:object=my-pubkey;type=public",
            Some(Pkcs11Uri {
                object: s("my-pubkey"),
                object_type: Some(ObjectType::Public),
                ..Default::default()
            }),
        ),
        (
            "pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
            Some(Pkcs11Uri {
                object: s("my-key"),
                object_type: Some(ObjectType::Private),
                pin_source: Some(PinSource::File("/etc/token".into())),
                ..Default::default()
            }),
        ),
        (
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;\
             manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;\
             type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=\
             ?pin-source=file:/etc/token_pin",
            Some(Pkcs11Uri {
                token: s("The Software PKCS#11 Softtoken"),
                manufacturer: s("Snake Oil, Inc."),
                model: s("1.0"),
                object: s("my-certificate"),
                object_type: Some(ObjectType::Cert),
                id: Some(vec![0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91]),
                serial: s(""),
                pin_source: Some(PinSource::File("/etc/token_pin".into())),
                ..Default::default()
            }),
        ),
        (
            "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
            Some(Pkcs11Uri {
                object: s("my-sign-key"),
                object_type: Some(ObjectType::Private),
                module_name: s("mypkcs11"),
                ..Default::default()
            }),
        ),
        (
            "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
            Some(Pkcs11Uri {
                object: s("my-sign-key"),
                object_type: Some(ObjectType::Private),
                module_path: Some("/mnt/libmypkcs11.so.1".into()),
                ..Default::default()
            }),
        ),
        (
            "pkcs11:token=Software%20PKCS%2311%20softtoken;\
             manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
            None,
        ),
    ]
}

/// The rest of §3.3's examples: slots, libraries, escaped names and vendor
/// attributes.
fn slots_libraries_and_vendors() -> Vec<(&'static str, Option<Pkcs11Uri>)> {
    vec![
        (
            "pkcs11:slot-description=Sun%20Metaslot",
            Some(Pkcs11Uri {
                slot_description: s("Sun Metaslot"),
                ..Default::default()
            }),
        ),
        (
            "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;\
             library-description=Soft%20Token%20Library;library-version=1.23",
            Some(Pkcs11Uri {
                library_manufacturer: s("Snake Oil, Inc."),
                library_description: s("Soft Token Library"),
                library_version: Some(LibraryVersion {
                    major: 1,
                    minor: 23,
                }),
                ..Default::default()
            }),
        ),
        (
            "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;\
             id=%01%02%03%Ba%dd%Ca%fe%04%05%06",
            Some(Pkcs11Uri {
                token: s("My token% created by Joe"),
                library_version: Some(LibraryVersion { major: 3, minor: 0 }),
                id: Some(vec![1, 2, 3, 0xba, 0xdd, 0xca, 0xfe, 4, 5, 6]),
                ..Default::default()
            }),
        ),
        (
            "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;\
             object=my-certificate;type=cert",
            Some(Pkcs11Uri {
                token: s("A name with a substring %;"),
                object: s("my-certificate"),
                object_type: Some(ObjectType::Cert),
                ..Default::default()
            }),
        ),
        (
            "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;\
             object=my-certificate;type=cert",
            Some(Pkcs11Uri {
                token: s("Name with a small A with acute: \u{e1}"),
                object: s("my-certificate"),
                object_type: Some(ObjectType::Cert),
                ..Default::default()
            }),
        ),
        (
            "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a\
             ?pin-source=file:/etc/token_pin&vendor-bbb=value-b",
            Some(Pkcs11Uri {
                token: s("my-token"),
                object: s("my-certificate"),
                object_type: Some(ObjectType::Cert),
                pin_source: Some(PinSource::File("/etc/token_pin".into())),
                vendor_path: vec![("vendor-aaa".into(), "value-a".into())],
                vendor_query: vec![("vendor-bbb".into(), "value-b".into())],
                ..Default::default()
            }),
        ),
    ]
}

/// `text` parses to `expected` and Display round-trips it, or (expected
/// `None`) it is refused for its pin-value without showing the PIN.
fn check(text: &str, expected: Option<Pkcs11Uri>) {
    match (Pkcs11Uri::parse(text), expected) {
        (Ok(got), Some(want)) => {
            assert_eq!(got, want, "{text}");
            // What Display writes parses back to the same fields.
            let again = Pkcs11Uri::parse(&got.to_string()).unwrap();
            assert_eq!(again, got, "{text} -> {got}");
        }
        (Err(e), None) => {
            assert_eq!(e.kind, ErrorKind::Malformed);
            assert!(e.detail.contains("pin-value"), "{e}");
            assert!(!e.detail.contains("the-pin"), "{e}");
        }
        (got, want) => panic!("{text}: got {got:?}, wanted {want:?}"),
    }
}

/// Every example URI of RFC 7512 §3.3, in the RFC's order, with the fields it
/// should give. The one with pin-value is refused by design (see the module doc).
#[test]
fn rfc7512_section_3_3_examples() {
    let table = [objects_and_modules(), slots_libraries_and_vendors()].concat();
    assert_eq!(table.len(), 13, "every example of §3.3");
    for (text, expected) in table {
        check(text, expected);
    }
}

#[test]
fn malformed_uris_are_refused_with_the_problem_named() {
    let table: &[(&str, &str)] = &[
        ("pkcs11", "does not start with `pkcs11:`"),
        ("http://example/", "does not start with `pkcs11:`"),
        ("pkcs11:token=a;token=b", "token appears twice"),
        (
            "pkcs11:object=a?pin-source=env:A&pin-source=env:B",
            "pin-source appears twice",
        ),
        ("pkcs11:x-a=1;x-a=2", "x-a appears twice"),
        ("pkcs11:token=a;;object=b", "empty attribute"),
        ("pkcs11:token=a;", "empty attribute"),
        ("pkcs11:token", "without `=`"),
        ("pkcs11:tok en=a", "is not letters"),
        ("pkcs11:token=a b", "must be percent-encoded"),
        ("pkcs11:token=a/b", "must be percent-encoded"),
        ("pkcs11:object=a?module-name=x&y", "without `=`"),
        ("pkcs11:token=%4", "two hex digits"),
        ("pkcs11:token=%zz", "two hex digits"),
        ("pkcs11:token=%FF", "not UTF-8"),
        ("pkcs11:type=key", "type must be one of"),
        ("pkcs11:library-version=1.", "library-version"),
        ("pkcs11:library-version=a", "library-version"),
        ("pkcs11:library-version=300", "at most 255"),
        ("pkcs11:slot-id=-1", "slot-id must be a decimal"),
        ("pkcs11:slot-id=99999999999999999999999", "too large"),
        ("pkcs11:object=a;pin-value=1234", "pin-value is refused"),
        ("pkcs11:object=a?pin-value=1234", "pin-value is refused"),
        ("pkcs11:object=a;module-path=/x.so", "query attribute"),
        ("pkcs11:?object=a", "path attribute"),
        ("pkcs11:Token=a", "case-sensitive"),
        ("pkcs11:object=a?Module-Path=/x.so", "case-sensitive"),
        ("pkcs11:object=a?module-path=lib.so", "absolute path"),
        ("pkcs11:object=a?pin-source=|/bin/pin", "not supported"),
        ("pkcs11:object=a?pin-source=env:", "variable name"),
        (
            "pkcs11:object=a?pin-source=file://host/p",
            "local absolute path",
        ),
        ("pkcs11:object=a#frag", "fragment"),
    ];
    for (text, problem) in table {
        let err = Pkcs11Uri::parse(text).expect_err(text);
        assert_eq!(err.kind, ErrorKind::Malformed, "{text}");
        assert!(err.detail.contains(problem), "{text}: {err}");
        assert!(!err.detail.contains("1234"), "{text}: {err}");
    }
}

#[test]
fn pin_sources() {
    let p = |v: &str| {
        Pkcs11Uri::parse(&format!("pkcs11:?pin-source={v}")).map(|u| u.pin_source.unwrap())
    };
    assert_eq!(p("file:/a/b").unwrap(), PinSource::File("/a/b".into()));
    assert_eq!(p("file:///a/b").unwrap(), PinSource::File("/a/b".into()));
    assert_eq!(p("/a/b").unwrap(), PinSource::File("/a/b".into()));
    assert_eq!(
        p("env:GPKI_PIN").unwrap(),
        PinSource::Env("GPKI_PIN".into())
    );
    assert_eq!(p("prompt").unwrap(), PinSource::Prompt);
    assert!(p("relative/path").is_err());
}

#[test]
fn env_pin_is_read_once_and_removed() {
    let name = "GPKI_HSM_URI_TEST_PIN_ENV";
    std::env::set_var(name, "4321");
    let pin = PinSource::Env(name.into()).read().unwrap();
    assert_eq!(pin.expose(), "4321");
    assert!(std::env::var_os(name).is_none());
    assert_eq!(format!("{pin:?}"), "Pin(..)");
    let err = PinSource::Env(name.into()).read().unwrap_err();
    assert_eq!(err.kind, gpki_pki::ErrorKind::NotFound);
}

#[test]
fn pin_file_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pin");
    std::fs::write(&path, "9876\r\nrest\n").unwrap();
    let pin = PinSource::File(path.clone()).read().unwrap();
    assert_eq!(pin.expose(), "9876");
    std::fs::write(&path, "\n").unwrap();
    assert_eq!(
        PinSource::File(path).read().unwrap_err().kind,
        gpki_pki::ErrorKind::Malformed
    );
}

#[test]
fn display_is_canonical_and_round_trips() {
    let uri = Pkcs11Uri::parse(
        "pkcs11:object=sub%20ca;token=CA%20keys;id=%01%ff;type=private\
         ?pin-source=env:GPKI_PIN&module-path=/usr/lib/softhsm/libsofthsm2.so",
    )
    .unwrap();
    assert_eq!(
        uri.to_string(),
        "pkcs11:token=CA%20keys;object=sub%20ca;type=private;id=%01%FF\
         ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:GPKI_PIN"
    );
    // Characters the grammar leaves free stay readable; `&` and `;` do not.
    let odd = Pkcs11Uri {
        token: s("a&b;c?d/e:f,g"),
        ..Default::default()
    };
    assert_eq!(odd.to_string(), "pkcs11:token=a%26b%3Bc%3Fd%2Fe:f,g");
    assert_eq!(Pkcs11Uri::parse(&odd.to_string()).unwrap(), odd);
}

#[test]
fn grammar_characters_free_in_each_component() {
    // pk11-path-res-avail allows `&` in the path; pk11-query-res-avail allows
    // `/`, `?` and `|` in the query.
    let uri = Pkcs11Uri::parse("pkcs11:token=:[]@!$'()*+,=&?x-attr=:[]@!$'()*+,=/?|").unwrap();
    assert_eq!(uri.token.as_deref(), Some(":[]@!$'()*+,=&"));
    assert_eq!(
        uri.vendor_query,
        vec![("x-attr".into(), ":[]@!$'()*+,=/?|".into())]
    );
    assert_eq!(uri.unrecognised_path_attribute(), None);
    let v = Pkcs11Uri::parse("pkcs11:object=k;x-vendor=1").unwrap();
    assert_eq!(v.unrecognised_path_attribute(), Some("x-vendor"));
}
