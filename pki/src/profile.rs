//! Certificate profiles, one TOML file each under `policies/`. A profile is loaded
//! and validated once; a bad file is refused with its path, the field and the reason.
//! The files in the repository's `policies/` are compiled in, so `gpki` works from any
//! directory; `--policies DIR` loads a directory instead.

use std::collections::BTreeMap;
use std::path::Path;

use const_oid::ObjectIdentifier;
use flagset::FlagSet;
use serde::{Deserialize, Serialize};
use x509_cert::ext::pkix::KeyUsages;

use crate::error::{Error, Result};
use crate::name::{self, Attribute};
use crate::signer::KeyType;

/// The built-in profiles: (file name, contents).
pub const BUILTIN: &[(&str, &str)] = &[
    ("root-ca.toml", include_str!("../../policies/root-ca.toml")),
    ("sub-ca.toml", include_str!("../../policies/sub-ca.toml")),
    (
        "official-sign.toml",
        include_str!("../../policies/official-sign.toml"),
    ),
    (
        "official-km.toml",
        include_str!("../../policies/official-km.toml"),
    ),
    (
        "institution-sign.toml",
        include_str!("../../policies/institution-sign.toml"),
    ),
    ("server.toml", include_str!("../../policies/server.toml")),
    ("g-ssl.toml", include_str!("../../policies/g-ssl.toml")),
    (
        "ocsp-signer.toml",
        include_str!("../../policies/ocsp-signer.toml"),
    ),
    ("tsa.toml", include_str!("../../policies/tsa.toml")),
    (
        "ra-operator.toml",
        include_str!("../../policies/ra-operator.toml"),
    ),
    (
        "service-client.toml",
        include_str!("../../policies/service-client.toml"),
    ),
    (
        "credential-signer.toml",
        include_str!("../../policies/credential-signer.toml"),
    ),
    (
        "status-list-signer.toml",
        include_str!("../../policies/status-list-signer.toml"),
    ),
    (
        "key-recovery.toml",
        include_str!("../../policies/key-recovery.toml"),
    ),
];

/// What a certificate of this profile is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileKind {
    RootCa,
    SubCa,
    EndEntity,
}

impl ProfileKind {
    pub fn is_ca(self) -> bool {
        !matches!(self, ProfileKind::EndEntity)
    }
}

/// Whether a kind of subjectAltName may or must appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SanRule {
    #[default]
    Forbidden,
    Optional,
    Required,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SanRules {
    #[serde(default)]
    pub dns: SanRule,
    #[serde(default)]
    pub email: SanRule,
    #[serde(default)]
    pub ip: SanRule,
    #[serde(default)]
    pub uri: SanRule,
    /// The subject's CN must equal one of the dNSName/IP SANs (CA/B Forum BR 7.1.4.3).
    #[serde(default)]
    pub cn_in_san: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// certificatePolicies OIDs, dotted.
    #[serde(default)]
    pub oids: Vec<String>,
    /// CPS pointer qualifier, added to each policy when set.
    #[serde(default)]
    pub cps_uri: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    /// cRLDistributionPoints with the issuing CA's CRL URL.
    #[serde(default)]
    pub crl: bool,
    /// authorityInfoAccess id-ad-ocsp with the issuing CA's OCSP URL.
    #[serde(default)]
    pub ocsp: bool,
    /// authorityInfoAccess id-ad-caIssuers with the issuing CA's certificate URL.
    #[serde(default)]
    pub ca_issuers: bool,
}

/// A profile as written in TOML.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    pub name: String,
    pub description: String,
    pub kind: ProfileKind,
    /// Longest validity; a request may ask for less, never more.
    pub validity_days: u32,
    pub key_types: Vec<KeyType>,
    pub key_usage: Vec<String>,
    #[serde(default = "yes")]
    pub key_usage_critical: bool,
    #[serde(default)]
    pub extended_key_usage: Vec<String>,
    #[serde(default)]
    pub extended_key_usage_critical: bool,
    /// For end entities: include basicConstraints cA=FALSE. CAs always carry it.
    #[serde(default)]
    pub basic_constraints: bool,
    /// For CAs: the pathLenConstraint, unless a request narrows it.
    #[serde(default)]
    pub path_len: Option<u8>,
    #[serde(default = "yes")]
    pub subject_key_identifier: bool,
    /// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1), for delegated OCSP signers.
    #[serde(default)]
    pub ocsp_no_check: bool,
    /// RFC 4514 template, most specific first; `{placeholder}` values are the
    /// requester's to set, the others are fixed.
    pub subject: String,
    #[serde(default)]
    pub policy: PolicySection,
    #[serde(default)]
    pub san: SanRules,
    pub distribution: Distribution,
    /// Extra lint sets beyond the RFC 5280 ones (`cabf-serverauth`).
    #[serde(default)]
    pub lints: Vec<String>,
    /// An RA approves a request for this profile only with an
    /// identity-verification record (face-to-face or contact-free).
    #[serde(default)]
    pub requires_identity_verification: bool,
}

fn yes() -> bool {
    true
}

/// A loaded, validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub spec: ProfileSpec,
    pub key_usage: FlagSet<KeyUsages>,
    pub extended_key_usage: Vec<ObjectIdentifier>,
    pub policy_oids: Vec<ObjectIdentifier>,
    pub template: Vec<Attribute>,
    /// Where it came from, for messages (`policies/g-ssl.toml` or `built-in:g-ssl.toml`).
    pub source: String,
}

pub const LINT_SETS: &[&str] = &["cabf-serverauth"];

/// The official's signing profile: a key-management certificate pairs with one.
pub const SIGN_PROFILE: &str = "official-sign";
/// The official's key-management (encryption) profile, whose keys are archived.
pub const KM_PROFILE: &str = "official-km";

pub fn key_usage_flag(name: &str) -> Option<KeyUsages> {
    Some(match name {
        "digitalSignature" => KeyUsages::DigitalSignature,
        "nonRepudiation" | "contentCommitment" => KeyUsages::NonRepudiation,
        "keyEncipherment" => KeyUsages::KeyEncipherment,
        "dataEncipherment" => KeyUsages::DataEncipherment,
        "keyAgreement" => KeyUsages::KeyAgreement,
        "keyCertSign" => KeyUsages::KeyCertSign,
        "cRLSign" => KeyUsages::CRLSign,
        "encipherOnly" => KeyUsages::EncipherOnly,
        "decipherOnly" => KeyUsages::DecipherOnly,
        _ => return None,
    })
}

/// Extended key usages by RFC 5280 name, plus the ones gpki's profiles use.
pub fn eku_oid(name: &str) -> Option<ObjectIdentifier> {
    let dotted = match name {
        "serverAuth" => "1.3.6.1.5.5.7.3.1",
        "clientAuth" => "1.3.6.1.5.5.7.3.2",
        "codeSigning" => "1.3.6.1.5.5.7.3.3",
        "emailProtection" => "1.3.6.1.5.5.7.3.4",
        // RFC 9336: id-kp-documentSigning, for signatures on documents.
        "documentSigning" => "1.3.6.1.5.5.7.3.36",
        "timeStamping" => "1.3.6.1.5.5.7.3.8",
        "OCSPSigning" => "1.3.6.1.5.5.7.3.9",
        // ISO/IEC 18013-5 §B.1.4: id-mdl-kp-mdlDS, the mDL document signer.
        "mdlDS" => "1.0.18013.5.1.2",
        // Stand-in for id-kp-oauthStatusSigning (draft-ietf-oauth-status-list: `{ id-kp
        // TBD }`, no number assigned yet), on the GPKI arc; policies/status-list-signer.toml.
        "statusListSigning" => "1.2.410.100001.2.3.1",
        // The Key Recovery Authority's archive key, on the GPKI arc (no public purpose
        // exists); policies/key-recovery.toml.
        "keyRecovery" => "1.2.410.100001.2.3.2",
        _ => return ObjectIdentifier::new(name).ok(),
    };
    Some(ObjectIdentifier::new_unwrap(dotted))
}

pub const EKU_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
pub const EKU_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
pub const EKU_EMAIL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4");
pub const EKU_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
pub const EKU_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// ISO/IEC 18013-5 id-mdl-kp-mdlDS: a mobile document signer.
pub const EKU_MDL_DS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.0.18013.5.1.2");
/// The stand-in for id-kp-oauthStatusSigning (see `eku_oid`).
pub const EKU_STATUS_LIST_SIGNING: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.410.100001.2.3.1");
/// The KRA's purpose (keyRecovery above).
pub const EKU_KEY_RECOVERY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.410.100001.2.3.2");
pub const EKU_ANY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");

impl Profile {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Parses and validates one profile. `source` names the file in errors.
    pub fn from_toml(text: &str, source: &str) -> Result<Profile> {
        let spec: ProfileSpec = toml::from_str(text)
            .map_err(|e| Error::malformed(format!("{source}: {}", e.to_string().trim())))?;
        Self::from_spec(spec, source)
    }

    fn from_spec(spec: ProfileSpec, source: &str) -> Result<Profile> {
        let bad = |field: &str, why: String| {
            Error::malformed(format!("{source}: field `{field}`: {why}"))
        };
        check_name_and_validity(&spec, source, &bad)?;
        let key_usage = key_usages(&spec, &bad)?;
        let extended_key_usage = extended_key_usages(&spec, &bad)?;
        let policy_oids = policies(&spec, &bad)?;
        let template = name::parse_rfc4514(&spec.subject).map_err(|e| bad("subject", e.detail))?;
        for a in &template {
            if !is_placeholder(&a.value) {
                // Fixed values must themselves be encodable.
                name::build(std::slice::from_ref(a)).map_err(|e| bad("subject", e.detail))?;
            }
        }
        check_lints_and_names(&spec, &bad)?;
        Ok(Profile {
            spec,
            key_usage,
            extended_key_usage,
            policy_oids,
            template,
            source: source.to_string(),
        })
    }

    /// Checks a requested subject against the template: same attributes in the same
    /// order, fixed values equal, placeholders non-empty.
    pub fn check_subject(&self, subject: &x509_cert::name::Name) -> Result<()> {
        let got = name::attributes(subject);
        let shape = || {
            format!(
                "subject `{}` does not fit profile {}'s template `{}`",
                name::to_string(subject),
                self.name(),
                self.spec.subject
            )
        };
        if got.len() != self.template.len() {
            return Err(Error::policy(format!(
                "{}: it has {} attributes, the template {}",
                shape(),
                got.len(),
                self.template.len()
            )));
        }
        for (i, (g, t)) in got.iter().zip(&self.template).enumerate() {
            if !g.short.eq_ignore_ascii_case(&t.short) {
                return Err(Error::policy(format!(
                    "{}: attribute {} must be {}, not {}",
                    shape(),
                    i + 1,
                    t.short,
                    g.short
                )));
            }
            if !is_placeholder(&t.value) && g.value != t.value {
                return Err(Error::policy(format!(
                    "{}: {} must be `{}`",
                    shape(),
                    t.short,
                    t.value
                )));
            }
        }
        Ok(())
    }

    pub fn allows_key(&self, key_type: KeyType) -> Result<()> {
        if self.spec.key_types.contains(&key_type) {
            Ok(())
        } else {
            Err(Error::policy(format!(
                "profile {} does not allow {key_type} keys (allowed: {})",
                self.name(),
                self.spec
                    .key_types
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    pub fn has_lint_set(&self, set: &str) -> bool {
        self.spec.lints.iter().any(|l| l == set)
    }
}

fn is_placeholder(v: &str) -> bool {
    v.starts_with('{') && v.ends_with('}')
}

/// All profiles by name.
#[derive(Debug, Clone)]
pub struct Profiles {
    by_name: BTreeMap<String, Profile>,
}

impl Profiles {
    /// The compiled-in profiles from the repository's `policies/`.
    pub fn builtin() -> Result<Profiles> {
        let mut by_name = BTreeMap::new();
        for (file, text) in BUILTIN {
            let p = Profile::from_toml(text, &format!("built-in:{file}"))?;
            by_name.insert(p.name().to_string(), p);
        }
        Ok(Profiles { by_name })
    }

    /// Every `*.toml` in `dir`. Any bad file fails the whole load.
    pub fn load_dir(dir: &Path) -> Result<Profiles> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::not_found(format!(
                "cannot read policies directory {}: {e}",
                dir.display()
            ))
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"))
            .collect();
        paths.sort();
        let mut by_name = BTreeMap::new();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::malformed(format!("{}: {e}", path.display())))?;
            let p = Profile::from_toml(&text, &path.display().to_string())?;
            by_name.insert(p.name().to_string(), p);
        }
        if by_name.is_empty() {
            return Err(Error::not_found(format!(
                "no profiles (*.toml) in {}",
                dir.display()
            )));
        }
        Ok(Profiles { by_name })
    }

    pub fn get(&self, name: &str) -> Result<&Profile> {
        self.by_name.get(name).ok_or_else(|| {
            Error::not_found(format!(
                "unknown profile `{name}` (known: {})",
                self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.by_name.values()
    }
}

/// A profile file's field error, naming the file and the field.
type Bad<'a> = dyn Fn(&str, String) -> Error + 'a;

/// The name matches the file's; the validity and key types are sane.
fn check_name_and_validity(spec: &ProfileSpec, source: &str, bad: &Bad) -> Result<()> {
    let stem = Path::new(source)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .trim_start_matches("built-in:");
    if spec.name != stem {
        return Err(bad(
            "name",
            format!("`{}` must match the file name `{stem}`", spec.name),
        ));
    }
    if spec.validity_days == 0 || spec.validity_days > 36_525 {
        return Err(bad("validity_days", "must be between 1 and 36525".into()));
    }
    if spec.key_types.is_empty() {
        return Err(bad("key_types", "must name at least one key type".into()));
    }
    Ok(())
}

/// The key usages, with a CA's keyCertSign and cRLSign and no end entity's.
fn key_usages(spec: &ProfileSpec, bad: &Bad) -> Result<FlagSet<KeyUsages>> {
    let mut key_usage = FlagSet::<KeyUsages>::default();
    for ku in &spec.key_usage {
        key_usage |= key_usage_flag(ku)
            .ok_or_else(|| bad("key_usage", format!("unknown key usage `{ku}`")))?;
    }
    if key_usage.is_empty() {
        return Err(bad("key_usage", "must name at least one usage".into()));
    }
    let cert_sign = key_usage.contains(KeyUsages::KeyCertSign);
    if spec.kind.is_ca() && !(cert_sign && key_usage.contains(KeyUsages::CRLSign)) {
        return Err(bad(
            "key_usage",
            "a CA profile needs keyCertSign and cRLSign".into(),
        ));
    }
    if !spec.kind.is_ca() && (cert_sign || key_usage.contains(KeyUsages::CRLSign)) {
        return Err(bad(
            "key_usage",
            "an end-entity profile must not have keyCertSign or cRLSign".into(),
        ));
    }
    Ok(key_usage)
}

/// The extended key usages: an end-entity profile needs one; a path length only
/// in a CA profile.
fn extended_key_usages(spec: &ProfileSpec, bad: &Bad) -> Result<Vec<ObjectIdentifier>> {
    if !spec.kind.is_ca() && spec.path_len.is_some() {
        return Err(bad(
            "path_len",
            "only CA profiles have a path length".into(),
        ));
    }
    if !spec.kind.is_ca() && spec.extended_key_usage.is_empty() {
        return Err(bad(
            "extended_key_usage",
            "an end-entity profile needs an extended key usage: without one, GnuTLS, NSS and \
             browser root programs (Mozilla Root Store Policy 5.3) take the certificate as fit \
             for any purpose, TLS server included"
                .into(),
        ));
    }
    let mut extended_key_usage = Vec::new();
    for e in &spec.extended_key_usage {
        extended_key_usage.push(
            eku_oid(e).ok_or_else(|| bad("extended_key_usage", format!("unknown usage `{e}`")))?,
        );
    }
    Ok(extended_key_usage)
}

/// The certificate policies, with an http(s) CPS URI only beside a policy OID.
fn policies(spec: &ProfileSpec, bad: &Bad) -> Result<Vec<ObjectIdentifier>> {
    let mut policy_oids = Vec::new();
    for p in &spec.policy.oids {
        policy_oids.push(
            ObjectIdentifier::new(p)
                .map_err(|_| bad("policy.oids", format!("`{p}` is not a dotted OID")))?,
        );
    }
    if let Some(uri) = &spec.policy.cps_uri {
        if !(uri.starts_with("http://") || uri.starts_with("https://")) || !uri.is_ascii() {
            return Err(bad(
                "policy.cps_uri",
                format!("`{uri}` is not an http(s) URI"),
            ));
        }
        if policy_oids.is_empty() {
            return Err(bad(
                "policy.cps_uri",
                "a CPS URI needs at least one policy OID".into(),
            ));
        }
    }
    Ok(policy_oids)
}

/// Known lint sets; CN among the SANs only where SANs can hold it; no URLs in a
/// self-signed root.
fn check_lints_and_names(spec: &ProfileSpec, bad: &Bad) -> Result<()> {
    for l in &spec.lints {
        if !LINT_SETS.contains(&l.as_str()) {
            return Err(bad(
                "lints",
                format!("unknown lint set `{l}` (known: {})", LINT_SETS.join(", ")),
            ));
        }
    }
    if spec.san.cn_in_san && spec.san.dns == SanRule::Forbidden && spec.san.ip == SanRule::Forbidden
    {
        return Err(bad(
            "san.cn_in_san",
            "needs dns or ip SANs to be allowed".into(),
        ));
    }
    if spec.kind == ProfileKind::RootCa
        && (spec.distribution.crl || spec.distribution.ocsp || spec.distribution.ca_issuers)
    {
        return Err(bad(
            "distribution",
            "a self-signed root has no issuer to point at".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_load() {
        let p = Profiles::builtin().unwrap();
        for name in [
            "root-ca",
            "sub-ca",
            "official-sign",
            "official-km",
            "institution-sign",
            "server",
            "g-ssl",
            "ocsp-signer",
            "tsa",
            "ra-operator",
            "credential-signer",
            "status-list-signer",
            "key-recovery",
        ] {
            p.get(name).unwrap();
        }
        assert_eq!(p.iter().count(), BUILTIN.len());
    }

    #[test]
    fn bad_profile_names_file_field_and_reason() {
        let good = BUILTIN
            .iter()
            .find(|(f, _)| *f == "official-sign.toml")
            .unwrap()
            .1;
        let bad = good.replace("\"nonRepudiation\"", "\"nonRepudation\"");
        let err = Profile::from_toml(&bad, "policies/official-sign.toml").unwrap_err();
        assert!(err.detail.contains("policies/official-sign.toml"), "{err}");
        assert!(
            err.detail.contains("key_usage") && err.detail.contains("nonRepudation"),
            "{err}"
        );

        let err = Profile::from_toml(
            &format!("{good}\nsurprise = 1\n"),
            "policies/official-sign.toml",
        )
        .unwrap_err();
        assert!(err.detail.contains("surprise"), "{err}");

        let err = Profile::from_toml(good, "policies/other.toml").unwrap_err();
        assert!(err.detail.contains("`name`"), "{err}");
    }

    #[test]
    fn subject_template_is_enforced() {
        let profiles = Profiles::builtin().unwrap();
        let p = profiles.get("official-sign").unwrap();
        let ok = name::parse("CN=Hong Gildong(001234567), OU=people, OU=Ministry of the Interior and Safety, O=Government of Korea, C=KR").unwrap();
        p.check_subject(&ok).unwrap();
        let wrong =
            name::parse("CN=Hong Gildong, OU=staff, OU=MOIS, O=Government of Korea, C=KR").unwrap();
        let err = p.check_subject(&wrong).unwrap_err();
        assert!(err.detail.contains("OU must be `people`"), "{err}");
        let short = name::parse("CN=Hong Gildong, C=KR").unwrap();
        assert!(p.check_subject(&short).is_err());
    }
}
