//! The dev hierarchy, each part made once and found after: the root, the
//! subordinate CA `mois` and the credential CA, one certificate of each profile,
//! the credential signers, the status list, the KRA, the services' TLS
//! certificates, the CRLs and a first audit checkpoint.

use gpki_ca::{Ca, IssueRequest, KeySource, NewCa};
use gpki_pki::cert::SanEntry;
use gpki_pki::signer::Passphrase;
use gpki_pki::{KeyType, Result, Signer, SoftwareKey};
use gpki_store::{AuditEvent, Store};
use serde_json::json;

use super::up::Listen;
use super::{url_base, Tally, CREDENTIAL_CA, DEV_KRA, ROOT, STATUS_LIST, SUB};
use crate::{write_file, Global};

/// The services' TLS server certificates (profile server): (name, subject, SANs).
const SERVICE_TLS: &[(&str, &str, &[&str])] = &[
    (
        "ca-tls",
        "O=Ministry of the Interior and Safety, L=Sejong, C=KR",
        &["dns:ca.gpki.go.kr"],
    ),
    (
        "ra-tls",
        "O=Ministry of the Interior and Safety, L=Sejong, C=KR",
        &["dns:ra.gpki.go.kr"],
    ),
];

/// One development certificate per end-entity profile: (profile, key type, subject, SANs).
const END_ENTITIES: &[(&str, KeyType, &str, &[&str])] = &[
    ("official-sign", KeyType::EcP256, "CN=Hong Gildong(001234567), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &["email:gildong.hong@mois.go.kr"]),
    ("official-km", KeyType::Rsa2048, "CN=Hong Gildong(001234567), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &["email:gildong.hong@mois.go.kr"]),
    ("institution-sign", KeyType::EcP256, "CN=Ministry of the Interior and Safety, OU=institutions, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &[]),
    ("server", KeyType::EcP256, "O=Ministry of the Interior and Safety, L=Sejong, C=KR", &["dns:docs.mois.go.kr"]),
    ("g-ssl", KeyType::EcP256, "O=Ministry of the Interior and Safety, L=Sejong, C=KR", &["dns:www.mois.go.kr", "dns:mois.go.kr"]),
    ("ocsp-signer", KeyType::EcP256, "CN=MOIS OCSP Responder, OU=GPKI, O=Government of Korea, C=KR", &[]),
    ("tsa", KeyType::EcP256, "CN=GPKI Time Stamping Authority, OU=GPKI, O=Government of Korea, C=KR", &[]),
    ("ra-operator", KeyType::EcP256, "CN=Kim Minji(007654321), OU=RA, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &[]),
    ("service-client", KeyType::EcP256, "CN=dev-ra-host, OU=GPKI services, O=Government of Korea, C=KR", &[]),
];

/// The credential CA's certificates, one per profile: the mobile ID's document
/// signer and its status-list signer, both naming the issuer's identifier.
const CREDENTIAL_SIGNERS: &[(&str, KeyType, &str, &[&str])] = &[
    ("credential-signer", KeyType::EcP256, "CN=Mobile Public Official ID Signer 1, OU=credentials, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &["uri:https://id.gpki.go.kr"]),
    ("status-list-signer", KeyType::EcP256, "CN=Mobile Public Official ID Status List 1, OU=credentials, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR", &["uri:https://id.gpki.go.kr"]),
];

/// The root CA, made when missing.
pub(super) async fn ensure_root(
    ca: &Ca,
    store: &Store,
    listen: &str,
    tally: &mut Tally,
) -> Result<()> {
    if store.find_authority(ROOT).await?.is_none() {
        ca.init_root(&NewCa {
            name: ROOT.into(),
            subject: "CN=GPKI Root CA 1, OU=GPKI, O=Government of Korea, C=KR".into(),
            key_type: KeyType::Rsa4096,
            signature_algorithm: None,
            validity_days: None,
            path_len: Some(1),
            name_constraints: None,
            url_base: url_base(listen),
            offline: false,
        })
        .await?;
        tally.made.push(format!("root CA {ROOT}"));
    } else {
        tally.found.push(format!("root CA {ROOT}"));
    }
    Ok(())
}

/// The subordinate CA `mois`, made when missing with the key type asked for; an
/// existing one keeps its key, and the report says so when another was asked for.
pub(super) async fn ensure_subordinate(
    ca: &Ca,
    store: &Store,
    at: &Listen,
    tally: &mut Tally,
) -> Result<()> {
    let listen = at.ocsp.as_str();
    if store.find_authority(SUB).await?.is_none() {
        ca.create_subordinate(
            &NewCa {
                name: SUB.into(),
                subject: "CN=GPKI MOIS CA 1, OU=GPKI, O=Government of Korea, C=KR".into(),
                key_type: at.ca_key_type,
                signature_algorithm: None,
                validity_days: None,
                path_len: Some(0),
                // DNS names only: rustls-webpki refuses every certificate under a
                // permitted directoryName constraint, and the operators' and
                // services' mutual-TLS certificates come from this CA. The RA and
                // CA services enforce the institution's DN subtree instead.
                name_constraints: gpki_pki::cert::name_constraints(
                    &[],
                    &[],
                    &["go.kr".into()],
                    &[],
                )?,
                url_base: url_base(listen),
                offline: false,
            },
            ROOT,
        )
        .await?;
        tally.made.push(format!(
            "subordinate CA {SUB} (Ministry of the Interior and Safety)"
        ));
    } else {
        // An existing CA keeps its key; say so when another type was asked for.
        let kept = store.authority_by_name(SUB).await?.key_type;
        if kept != at.ca_key_type.as_str() {
            tally.found.push(format!(
                "subordinate CA {SUB} (its key stays {kept}: --ca-key-type {} applies only when it is made)",
                at.ca_key_type
            ));
        } else {
            tally.found.push(format!("subordinate CA {SUB}"));
        }
    }
    Ok(())
}

/// The credential CA, made when missing.
pub(super) async fn ensure_credential_ca(
    ca: &Ca,
    store: &Store,
    listen: &str,
    tally: &mut Tally,
) -> Result<()> {
    if store.find_authority(CREDENTIAL_CA).await?.is_none() {
        ca.create_subordinate(
            &NewCa {
                name: CREDENTIAL_CA.into(),
                subject: "CN=GPKI Mobile Credential CA 1, OU=GPKI, O=Government of Korea, C=KR"
                    .into(),
                // ISO/IEC 18013-5 Annex B: the document signer's issuer signs with ECDSA.
                key_type: KeyType::EcP384,
                signature_algorithm: None,
                validity_days: None,
                path_len: Some(0),
                name_constraints: None,
                url_base: url_base(listen),
                offline: false,
            },
            ROOT,
        )
        .await?;
        tally.made.push(format!(
            "credential CA {CREDENTIAL_CA} (mobile credentials)"
        ));
    } else {
        tally.found.push(format!("credential CA {CREDENTIAL_CA}"));
    }
    Ok(())
}

/// Writes each CA's certificate, `certs/NAME.crt.pem`, and the subordinate CA's
/// chain, `certs/chain.pem`.
pub(super) async fn write_ca_certificates(
    ca: &Ca,
    store: &Store,
    certs_dir: &std::path::Path,
) -> Result<()> {
    for name in [ROOT, SUB, CREDENTIAL_CA] {
        let a = store.authority_by_name(name).await?;
        if let Some(der) = &a.cert_der {
            write_file(
                &certs_dir.join(format!("{name}.crt.pem")),
                gpki_pki::pem::encode("CERTIFICATE", der).as_bytes(),
            )?;
        }
    }
    let chain = ca.chain(SUB).await?;
    write_file(
        &certs_dir.join("chain.pem"),
        chain
            .iter()
            .map(|c| gpki_pki::pem::encode("CERTIFICATE", c))
            .collect::<String>()
            .as_bytes(),
    )
}

/// One certificate of each end-entity profile, from the subordinate CA.
pub(super) async fn issue_end_entities(dev_certs: &DevCerts<'_>, tally: &mut Tally) -> Result<()> {
    for (profile, key_type, subject, sans) in END_ENTITIES {
        dev_certs
            .ensure(profile, profile, *key_type, subject, sans, tally)
            .await?;
    }
    Ok(())
}

/// The credential CA's signers, then its chain (`certs/mobile-id-chain.pem`) and
/// each signer's with it (`certs/PROFILE-chain.pem`).
pub(super) async fn issue_credential_signers(
    dev_certs: &DevCerts<'_>,
    tally: &mut Tally,
) -> Result<()> {
    let (ca, store, certs_dir) = (dev_certs.ca, dev_certs.store, dev_certs.dir);
    let credential_ca = store.authority_by_name(CREDENTIAL_CA).await?;
    let credential_certs = DevCerts {
        ca_name: CREDENTIAL_CA,
        ca_id: credential_ca.id,
        ..*dev_certs
    };
    for (profile, key_type, subject, sans) in CREDENTIAL_SIGNERS {
        credential_certs
            .ensure(profile, profile, *key_type, subject, sans, tally)
            .await?;
    }
    let credential_chain = ca
        .chain(CREDENTIAL_CA)
        .await?
        .iter()
        .map(|c| gpki_pki::pem::encode("CERTIFICATE", c))
        .collect::<String>();
    write_file(
        &certs_dir.join(format!("{CREDENTIAL_CA}-chain.pem")),
        credential_chain.as_bytes(),
    )?;
    // Each signer with its chain, leaf first: what goes in x5c / x5chain.
    for (profile, ..) in CREDENTIAL_SIGNERS {
        let leaf =
            std::fs::read_to_string(certs_dir.join(format!("{profile}.crt.pem"))).map_err(|e| {
                gpki_pki::Error::internal(format!("cannot read the {profile} certificate: {e}"))
            })?;
        write_file(
            &certs_dir.join(format!("{profile}-chain.pem")),
            format!("{leaf}{credential_chain}").as_bytes(),
        )?;
    }
    Ok(())
}

/// The dev status list of mobile IDs, served by the OCSP responder at `listen`.
pub(super) async fn ensure_status_list(
    g: &Global,
    store: &Store,
    listen: &str,
    tally: &mut Tally,
) -> Result<()> {
    if store
        .status_lists()
        .await?
        .iter()
        .all(|l| l.name != STATUS_LIST)
    {
        store
            .create_status_list(
                STATUS_LIST,
                &format!("http://{listen}/statuslists/{STATUS_LIST}"),
                1,
                1 << 20,
                &AuditEvent::new(
                    &g.actor(),
                    "status-list.create",
                    format!("status-list:{STATUS_LIST}"),
                    json!({ "size": 1 << 20, "bits": 1 }),
                ),
            )
            .await?;
        tally
            .made
            .push(format!("status list {STATUS_LIST} (1,048,576 credentials)"));
    } else {
        tally.found.push(format!("status list {STATUS_LIST}"));
    }
    Ok(())
}

/// The CA and RA services' TLS server certificates, from the subordinate CA.
pub(super) async fn issue_service_tls(dev_certs: &DevCerts<'_>, tally: &mut Tally) -> Result<()> {
    for (name, subject, sans) in SERVICE_TLS {
        dev_certs
            .ensure(name, "server", KeyType::EcP256, subject, sans, tally)
            .await?;
    }
    Ok(())
}

/// Each CA's full CRL, generated again when the newest has passed its next
/// update, written to `crl/NAME.crl.pem`.
pub(super) async fn refresh_crls(
    ca: &Ca,
    store: &Store,
    dir: &std::path::Path,
    tally: &mut Tally,
) -> Result<()> {
    let crl_dir = dir.join("crl");
    for name in [ROOT, SUB, CREDENTIAL_CA] {
        let crl = match store
            .latest_crl(store.authority_by_name(name).await?.id, true)
            .await?
        {
            Some(c) if c.next_update > gpki_pki::time::now() => c,
            _ => {
                let c = ca.generate_crl(name, false, 24).await?;
                tally.made.push(format!("CRL {} of {name}", c.crl_number));
                c
            }
        };
        write_file(
            &crl_dir.join(format!("{name}.crl.pem")),
            gpki_pki::pem::encode("X509 CRL", &crl.der).as_bytes(),
        )?;
    }
    Ok(())
}

/// The audit chain anchored from the start: the audit key and a first signed
/// checkpoint (the CA service then takes one every 300 s).
pub(super) async fn audit_checkpoint(
    ca: &Ca,
    dir: &std::path::Path,
    tally: &mut Tally,
) -> Result<()> {
    let checkpoints = |d: &std::path::Path| std::fs::read_dir(d).map_or(0, |e| e.count());
    let before = checkpoints(&dir.join("audit"));
    let (cp, _) = ca.audit_checkpoint(&dir.join("audit")).await?;
    let what = format!(
        "audit checkpoint of row {} in {}/audit",
        cp.seq,
        dir.display()
    );
    if checkpoints(&dir.join("audit")) > before {
        tally.made.push(what);
    } else {
        tally.found.push(what);
    }
    Ok(())
}

/// Issues the dev certificates of one CA, each once (request key
/// `dev:NAME`): `certs/NAME.crt.pem` and its encrypted key `certs/NAME.key.pem`.
#[derive(Clone, Copy)]
pub(super) struct DevCerts<'a> {
    pub(super) ca: &'a Ca,
    pub(super) store: &'a Store,
    pub(super) ca_name: &'static str,
    pub(super) ca_id: i64,
    pub(super) dir: &'a std::path::Path,
    pub(super) pass: &'a Passphrase,
}

impl DevCerts<'_> {
    async fn ensure(
        &self,
        name: &str,
        profile: &str,
        key_type: KeyType,
        subject: &str,
        sans: &[&str],
        tally: &mut Tally,
    ) -> Result<()> {
        let request_key = format!("dev:{name}");
        let cert_path = self.dir.join(format!("{name}.crt.pem"));
        if let Some(existing) = self
            .store
            .certificate_by_request_key(self.ca_id, &request_key)
            .await?
        {
            if let Some(der) = &existing.der {
                write_file(
                    &cert_path,
                    gpki_pki::pem::encode("CERTIFICATE", der).as_bytes(),
                )?;
                tally
                    .found
                    .push(format!("{name} certificate {}", existing.serial));
                return Ok(());
            }
        }
        let key_path = self.dir.join(format!("{name}.key.pem"));
        let key = if key_path.exists() {
            SoftwareKey::read_encrypted(&key_path, self.pass)?
        } else {
            let k = SoftwareKey::generate(key_type)?;
            k.write_encrypted(&key_path, self.pass)?;
            k
        };
        let issued = self
            .ca
            .issue(&IssueRequest {
                ca: self.ca_name.into(),
                profile: profile.to_string(),
                subject: Some(subject.to_string()),
                key: KeySource::PublicKey(key.public_key_der().to_vec()),
                sans: sans
                    .iter()
                    .map(|s| s.parse::<SanEntry>())
                    .collect::<Result<Vec<_>>>()?,
                validity_days: None,
                request_key: Some(request_key),
                renewed_from: None,
            })
            .await?;
        write_file(
            &cert_path,
            gpki_pki::pem::encode("CERTIFICATE", &issued.der).as_bytes(),
        )?;
        tally
            .made
            .push(format!("{name} certificate {}", issued.record.serial));
        Ok(())
    }
}

/// The dev Key Recovery Authority `dev-kra` (2 of its officers release a key),
/// where the CA service archives officials' km keys. Its key would be made on the
/// KRA's own host; in dev that host is `DATA_DIR/kra/` (under the signer
/// passphrase), and the CA sees only its request.
pub(super) async fn kra_setup(
    g: &Global,
    store: &Store,
    ca: &Ca,
    dir: &std::path::Path,
    pass: &Passphrase,
    tally: &mut Tally,
) -> Result<()> {
    // Registering a KRA is the administrator's, on the whole store.
    if store.kras().await?.iter().any(|k| k.name == DEV_KRA) {
        tally.found.push(format!("KRA {DEV_KRA}"));
        return Ok(());
    }
    let key_path = dir.join("kra").join("kra.key.pem");
    std::fs::create_dir_all(dir.join("kra"))
        .map_err(|e| gpki_pki::Error::internal(format!("cannot create the KRA directory: {e}")))?;
    // A key left by a run that stopped before registering the KRA is used again.
    let key = if key_path.exists() {
        gpki_pki::SoftwareKey::read_encrypted(&key_path, pass)?
    } else {
        let key = gpki_pki::SoftwareKey::generate(KeyType::Rsa3072)?;
        key.write_encrypted(&key_path, pass)?;
        key
    };
    let csr = gpki_pki::csr::build(
        &key,
        &gpki_pki::name::parse(
            "CN=GPKI Key Recovery Authority, OU=GPKI, O=Government of Korea, C=KR",
        )?,
    )?;
    let issued = ca
        .issue(&gpki_ca::IssueRequest {
            ca: SUB.into(),
            profile: "key-recovery".into(),
            subject: None,
            key: gpki_ca::KeySource::Csr(csr),
            sans: vec![],
            validity_days: None,
            request_key: Some(format!("dev:{DEV_KRA}")),
            renewed_from: None,
        })
        .await?;
    write_file(
        &dir.join("certs").join("kra.crt.pem"),
        gpki_pki::pem::encode("CERTIFICATE", &issued.der).as_bytes(),
    )?;
    store
        .create_kra(
            DEV_KRA,
            issued.record.id,
            2,
            &AuditEvent::new(
                &g.actor(),
                "km.kra.create",
                format!("kra:{DEV_KRA}"),
                json!({ "ca": SUB, "serial": issued.record.serial, "quorum": 2 }),
            ),
        )
        .await?;
    tally.made.push(format!(
        "KRA {DEV_KRA} (2 officers release a key; its key in {})",
        key_path.display()
    ));
    Ok(())
}
