//! The extensions of a certificate being built: one small builder per extension.

use const_oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_AD_OCSP, ID_CE_NAME_CONSTRAINTS, ID_QT_CPS};
use der::asn1::{Ia5String, OctetString};
use der::Any;
use x509_cert::ext::pkix::certpolicy::{PolicyInformation, PolicyQualifierInfo};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::DistributionPointName;
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;

use crate::error::{Error, Result};
use crate::profile::{Profile, ProfileKind};

use super::{
    extension, extension_oid, uri, IssuerContext, SanEntry, SubjectRequest, ID_PKIX_OCSP_NOCHECK,
};

/// What the extension builders read: one small builder per extension, each
/// answering the extension or `None` when the profile leaves it out.
pub(super) struct Extensions<'a> {
    pub(super) profile: &'a Profile,
    pub(super) issuer: &'a IssuerContext,
    pub(super) request: &'a SubjectRequest,
    pub(super) self_signed: bool,
    /// The subject key's identifier (RFC 5280 §4.2.1.2 method 1).
    pub(super) key_id: Vec<u8>,
}

impl Extensions<'_> {
    /// RFC 5280 §4.2.1.9: critical; in a CA certificate with the path length the
    /// profile allows, narrowed by the request (a root's only by the request).
    pub(super) fn basic_constraints(&self) -> Result<Option<Extension>> {
        let spec = &self.profile.spec;
        if !spec.kind.is_ca() {
            return spec
                .basic_constraints
                .then(|| {
                    extension(
                        &BasicConstraints {
                            ca: false,
                            path_len_constraint: None,
                        },
                        true,
                    )
                })
                .transpose();
        }
        let path_len = match (spec.path_len, self.request.path_len) {
            (Some(p), Some(r)) if r > p => {
                return Err(Error::policy(format!(
                    "path length {r} exceeds profile {}'s {p}",
                    self.profile.name()
                )))
            }
            _ if spec.kind == ProfileKind::RootCa => self.request.path_len,
            (_, Some(r)) => Some(r),
            (p, None) => p,
        };
        extension(
            &BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            },
            true,
        )
        .map(Some)
    }

    pub(super) fn key_usage(&self) -> Result<Extension> {
        extension(
            &KeyUsage(self.profile.key_usage),
            self.profile.spec.key_usage_critical,
        )
    }

    pub(super) fn extended_key_usage(&self) -> Result<Option<Extension>> {
        let ekus = &self.profile.extended_key_usage;
        (!ekus.is_empty())
            .then(|| {
                extension(
                    &ExtendedKeyUsage(ekus.clone()),
                    self.profile.spec.extended_key_usage_critical,
                )
            })
            .transpose()
    }

    /// Always in CA certificates (RFC 5280 §4.2.1.2), in others as the profile says.
    pub(super) fn subject_key_identifier(&self) -> Result<Option<Extension>> {
        let spec = &self.profile.spec;
        (spec.subject_key_identifier || spec.kind.is_ca())
            .then(|| {
                extension(
                    &SubjectKeyIdentifier(OctetString::new(self.key_id.clone())?),
                    false,
                )
            })
            .transpose()
    }

    /// RFC 5280 §4.2.1.1: in every certificate but self-signed ones, where it is
    /// still customary to repeat the SKI.
    pub(super) fn authority_key_identifier(&self) -> Result<Extension> {
        let id = if self.self_signed {
            &self.key_id
        } else {
            &self.issuer.key_id
        };
        extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(id.clone())?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )
    }

    /// The profile's policies, each with the CPS URI when the profile has one.
    pub(super) fn certificate_policies(&self) -> Result<Option<Extension>> {
        if self.profile.policy_oids.is_empty() {
            return Ok(None);
        }
        let qualifiers = match &self.profile.spec.policy.cps_uri {
            Some(u) => Some(vec![PolicyQualifierInfo {
                policy_qualifier_id: ID_QT_CPS,
                qualifier: Some(Any::encode_from(&Ia5String::new(u)?)?),
            }]),
            None => None,
        };
        let policies = self
            .profile
            .policy_oids
            .iter()
            .map(|oid| PolicyInformation {
                policy_identifier: *oid,
                policy_qualifiers: qualifiers.clone(),
            })
            .collect();
        extension(&CertificatePolicies(policies), false).map(Some)
    }

    /// The issuer's URL of `what`, which the profile asks for: its absence refuses.
    fn issuer_url<'u>(&self, url: &'u Option<String>, what: &str) -> Result<&'u str> {
        url.as_deref().ok_or_else(|| {
            Error::policy(format!(
                "profile {} needs {what} URL, and the issuing CA has none",
                self.profile.name(),
            ))
        })
    }

    pub(super) fn crl_distribution_points(&self) -> Result<Option<Extension>> {
        if !self.profile.spec.distribution.crl {
            return Ok(None);
        }
        let url = self.issuer_url(&self.issuer.urls.crl, "a CRL")?;
        extension(
            &CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
                reasons: None,
                crl_issuer: None,
            }]),
            false,
        )
        .map(Some)
    }

    /// OCSP and caIssuers, as the profile asks.
    pub(super) fn authority_info_access(&self) -> Result<Option<Extension>> {
        let wanted = &self.profile.spec.distribution;
        let urls = &self.issuer.urls;
        let mut access = Vec::new();
        for (asked, url, what, method) in [
            (wanted.ocsp, &urls.ocsp, "an OCSP", ID_AD_OCSP),
            (
                wanted.ca_issuers,
                &urls.ca_issuers,
                "a caIssuers",
                ID_AD_CA_ISSUERS,
            ),
        ] {
            if asked {
                access.push(AccessDescription {
                    access_method: method,
                    access_location: uri(self.issuer_url(url, what)?)?,
                });
            }
        }
        (!access.is_empty())
            .then(|| extension(&AuthorityInfoAccessSyntax(access), false))
            .transpose()
    }

    pub(super) fn subject_alt_name(&self) -> Result<Option<Extension>> {
        if self.request.sans.is_empty() {
            return Ok(None);
        }
        let names = self
            .request
            .sans
            .iter()
            .map(SanEntry::to_general_name)
            .collect::<Result<Vec<_>>>()?;
        extension(&SubjectAltName(names), false).map(Some)
    }

    /// Only in subordinate CA certificates, and critical (RFC 5280 §4.2.1.10).
    pub(super) fn name_constraints(&self) -> Result<Option<Extension>> {
        let Some(nc) = &self.request.name_constraints else {
            return Ok(None);
        };
        if self.profile.spec.kind != ProfileKind::SubCa {
            return Err(Error::policy(
                "name constraints belong only in subordinate CA certificates",
            ));
        }
        extension_oid(ID_CE_NAME_CONSTRAINTS, nc, true).map(Some)
    }

    /// RFC 6960 §4.2.2.2.1, in delegated responders' certificates.
    pub(super) fn ocsp_no_check(&self) -> Result<Option<Extension>> {
        self.profile
            .spec
            .ocsp_no_check
            .then(|| extension_oid(ID_PKIX_OCSP_NOCHECK, &der::asn1::Null, false))
            .transpose()
    }
}
