//! The first steps of the dev RA scenario: the dev administrator enrols Lee, who
//! issues Hong's certificate and is refused outside what the RA may do.

use super::*;

/// The RA answers the dev administrator, who enrols Lee; the certificate file
/// Lee gets logs in as is. Returns the enrolment.
pub(super) fn step_the_administrator_enrols_lee(env: &Env) -> Value {
    // The RA answers the dev administrator once its port is open.
    let deadline = Instant::now() + Duration::from_secs(60);
    let who = loop {
        let r = user(env, &["ra", "whoami"]);
        if r.code == 0 {
            break serde_json::from_str::<Value>(&r.stdout).unwrap();
        }
        assert!(Instant::now() < deadline, "RA never answered: {}", r.stderr);
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(who["operator"]["name"], "dev-admin", "{who}");
    assert_eq!(who["operator"]["admin"], true, "{who}");
    assert_eq!(who["ra"]["name"], "dev-mois", "{who}");

    // Enrol a second operator; the certificate file it gets logs in as is.
    let lee = format!("CN=Lee Sora(000000002), OU=RA, {MOIS}");
    user_ok(
        env,
        &[
            "key",
            "new",
            "--key-out",
            "lee.key.pem",
            "--subject",
            &lee,
            "--csr-out",
            "lee.csr",
        ],
    );
    // OpenSSL checks the request's self-signature; an existing key is never replaced.
    let checked = env.openssl_ok(&["req", "-in", "lee.csr", "-verify", "-noout", "-subject"]);
    assert!(checked.contains("Lee Sora"), "{checked}");
    let before = std::fs::read(env.path("lee.key.pem")).unwrap();
    let r = user(env, &["key", "new", "--key-out", "lee.key.pem"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("refusing to overwrite"), "{}", r.stdout);
    assert_eq!(std::fs::read(env.path("lee.key.pem")).unwrap(), before);
    let enrolled = user_ok(
        env,
        &[
            "ra",
            "operator",
            "enrol",
            "--idempotency-key",
            "enrol-lee",
            "--name",
            "lee",
            "--subject",
            &lee,
            "--csr",
            "lee.csr",
            "--out",
            "lee.pem",
        ],
    );
    assert_eq!(enrolled["request"]["status"], "issued", "{enrolled}");
    let as_lee = ["--cert", "lee.pem", "--key", "lee.key.pem"];
    let who = user_ok(env, &[&["ra", "whoami"][..], &as_lee].concat());
    assert_eq!(who["operator"]["name"], "lee", "{who}");
    assert_eq!(who["operator"]["admin"], false, "{who}");

    enrolled
}

/// Lee issues an official's signing certificate after seeing an ID card; returns
/// its serial.
pub(super) fn step_lee_issues_hongs_certificate(env: &Env) -> String {
    let as_lee = AS_LEE;
    // Lee issues an official's signing certificate after seeing an ID card.
    let hong = hong_subject();
    user_ok(
        env,
        &[
            "key",
            "new",
            "--key-out",
            "hong.key.pem",
            "--subject",
            &hong,
            "--csr-out",
            "hong.csr",
        ],
    );
    let submit = [
        "ra",
        "submit",
        "--idempotency-key",
        "hong-1",
        "--profile",
        "official-sign",
        "--subject",
        &hong,
        "--csr",
        "hong.csr",
        "--identity-method",
        "face-to-face",
        "--identity-document",
        "public official ID card 1234",
        "--out",
        "hong.pem",
    ];
    let issued = user_ok(env, &[&submit[..], &as_lee].concat());
    assert_eq!(issued["request"]["status"], "issued", "{issued}");
    let serial = issued["certificate"]["serial"]
        .as_str()
        .unwrap()
        .to_string();
    openssl_verify(env, "smimesign", "hong.pem");
    serial
}

/// An employee number belongs to one official; then Hong's mobile ID through the
/// RA (`enrolled` is Lee's enrolment).
pub(super) fn step_an_employee_number_belongs_to_one_official(
    env: &Env,
    serial: &str,
    enrolled: &Value,
) {
    let as_lee = AS_LEE;
    // An employee number belongs to one official: an operator who names Hong's
    // number for another name gets no certificate, so no mobile ID can be had, or
    // Hong's revoked, through it (issue 28, point 3).
    user_ok(
        env,
        &[
            "key",
            "new",
            "--key-out",
            "mallory.key.pem",
            "--subject",
            "CN=ignored",
            "--csr-out",
            "mallory.csr",
        ],
    );
    let mallory = [
        "ra",
        "submit",
        "--idempotency-key",
        "mallory-1",
        "--profile",
        "official-sign",
        "--subject",
        &format!("CN=Mallory(001234567), OU=people, {MOIS}"),
        "--csr",
        "mallory.csr",
        "--identity-method",
        "face-to-face",
        "--identity-document",
        "ID card 666",
    ];
    let r = user(env, &[&mallory[..], &as_lee].concat());
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("employee number 001234567 belongs to Hong Gildong"),
        "{}",
        r.stdout
    );
    super::credentials::credentials_through_the_ra(env, serial, enrolled);
}

/// A subject of another institution is outside the dev RA's scope.
pub(super) fn step_another_institution_is_outside_the_scope(env: &Env) {
    let as_lee = AS_LEE;
    // A subject of another institution is outside the dev RA's scope.
    let moe = "CN=Kim Cheolsu(001111111), OU=people, OU=Ministry of Education, O=Government of Korea, C=KR";
    let other = [
        "ra",
        "submit",
        "--idempotency-key",
        "kim-1",
        "--profile",
        "official-sign",
        "--subject",
        moe,
        "--csr",
        "hong.csr",
        "--identity-method",
        "face-to-face",
        "--identity-document",
        "ID card 99",
    ];
    let r = user(env, &[&other[..], &as_lee].concat());
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["error"]["kind"], "unauthorized", "{v}");
    assert!(
        v["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("outside the institutions of RA `dev-mois`"),
        "{v}"
    );
    let listed = user_ok(env, &["ra", "requests"]);
    assert!(
        !listed.to_string().contains("kim-1"),
        "a refused request is not recorded: {listed}"
    );
}
