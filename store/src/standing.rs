//! Whether a CA may sign (design invariant 8): its own certificate and every CA
//! certificate above it must be in force: issued, not revoked, not on hold, within
//! its validity. The store's rows are the truth; a CA certificate the store does
//! not know is not assumed good.

use gpki_pki::crl::RevocationReason;
use gpki_pki::serial::SerialNumber;
use gpki_pki::{Error, Result};

use crate::{AuthorityRecord, CertStatus, Store};

/// Where a CA stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Created, its certificate not yet signed.
    Pending,
    /// Every certificate from it to its root is in force.
    Active,
    /// The certificate of `ca` (the CA itself or one above it) is unusable.
    Unusable { ca: String, why: Why },
}

/// Why a CA certificate is not in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Revoked(Option<RevocationReason>),
    Hold,
    Expired,
    NotYetValid,
    /// Its key was revoked as compromised in some certificate of the store (a
    /// cross-certificate, say), whatever its own certificate says.
    KeyCompromised,
    /// The store has no issued row for it: its status cannot be established.
    Unknown,
}

impl Standing {
    /// `pending`, `active`, `revoked`, `hold`, `expired`, `not-yet-valid` or
    /// `unknown`, for `gpki ca list`.
    pub fn label(&self) -> &'static str {
        match self {
            Standing::Pending => "pending",
            Standing::Active => "active",
            Standing::Unusable { why, .. } => match why {
                Why::Revoked(_) => "revoked",
                Why::Hold => "hold",
                Why::Expired => "expired",
                Why::NotYetValid => "not-yet-valid",
                Why::KeyCompromised => "revoked",
                Why::Unknown => "unknown",
            },
        }
    }

    /// The CA whose certificate decides the standing, when it is not active.
    pub fn cause(&self) -> Option<&str> {
        match self {
            Standing::Unusable { ca, .. } => Some(ca),
            _ => None,
        }
    }

    /// A sentence for people: what is wrong, and with whose certificate.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Standing::Pending => format!("CA `{name}` has no certificate yet"),
            Standing::Active => format!("CA `{name}` is active"),
            Standing::Unusable { ca, why } => {
                let whose = if ca == name {
                    format!("the certificate of CA `{name}`")
                } else {
                    format!("the certificate of CA `{ca}`, above `{name}`,")
                };
                let what = match why {
                    Why::Revoked(Some(r)) => format!("is revoked ({})", r.as_str()),
                    Why::Revoked(None) => "is revoked".to_string(),
                    Why::Hold => "is on hold (certificateHold)".to_string(),
                    Why::Expired => "has expired".to_string(),
                    Why::NotYetValid => "is not valid yet".to_string(),
                    Why::KeyCompromised => {
                        "has a key that another certificate of the store was revoked for as compromised"
                            .to_string()
                    }
                    Why::Unknown => {
                        "has no issued record in the store, so its status is unknown".to_string()
                    }
                };
                format!("{whose} {what}")
            }
        }
    }

    /// Ok when the CA may sign certificates; otherwise the refusal.
    pub fn require_active(&self, name: &str) -> Result<()> {
        match self {
            Standing::Active => Ok(()),
            Standing::Pending => Err(Error::conflict(self.describe(name))),
            Standing::Unusable { .. } => Err(Error::conflict(format!(
                "{}: CA `{name}` signs nothing but CRLs (design invariant 8)",
                self.describe(name)
            ))),
        }
    }
}

/// The standing of CA `record` at `now`: walks from it to its root and stops at
/// the first certificate not in force. Reads only; the CA, the TSA and `gpki ca
/// list` share it.
pub async fn standing(store: &Store, record: &AuthorityRecord, now: i64) -> Result<Standing> {
    if record.status != "active" {
        return Ok(Standing::Pending);
    }
    let mut walk = Some(record.clone());
    let mut depth = 0;
    while let Some(r) = walk {
        depth += 1;
        if depth > MAX_DEPTH {
            // A parent loop written into the store: the chain cannot be established.
            return Ok(Standing::Unusable {
                ca: r.name,
                why: Why::Unknown,
            });
        }
        if let Some(why) = why_not_in_force(store, &r, now).await? {
            return Ok(Standing::Unusable { ca: r.name, why });
        }
        walk = match r.parent_id {
            Some(p) if p != r.id => Some(store.authority(p).await?),
            _ => None,
        };
    }
    Ok(Standing::Active)
}

/// More CAs above one another than any real hierarchy has.
const MAX_DEPTH: usize = 16;

async fn why_not_in_force(store: &Store, r: &AuthorityRecord, now: i64) -> Result<Option<Why>> {
    let Some(der) = r.cert_der.as_deref() else {
        return Ok(Some(Why::Unknown));
    };
    let cert = gpki_pki::cert::decode(der).map_err(|e| {
        Error::internal(format!(
            "stored certificate of CA `{}` does not decode: {e}",
            r.name
        ))
    })?;
    let tbs = &cert.tbs_certificate;
    let serial = SerialNumber::from_bytes(tbs.serial_number.as_bytes())?.to_hex();
    // A root's certificate is recorded under the root itself.
    let issuer_id = r.parent_id.unwrap_or(r.id);
    let Some(row) = store.certificate(issuer_id, &serial).await? else {
        return Ok(Some(Why::Unknown));
    };
    match row.status {
        CertStatus::Revoked => {
            return Ok(Some(Why::Revoked(
                row.reason.and_then(RevocationReason::from_code),
            )))
        }
        CertStatus::Hold => return Ok(Some(Why::Hold)),
        CertStatus::Issued => {}
        CertStatus::Pending | CertStatus::Abandoned => return Ok(Some(Why::Unknown)),
    }
    if !store
        .compromised_keys(std::slice::from_ref(&row.spki_sha256))
        .await?
        .is_empty()
    {
        return Ok(Some(Why::KeyCompromised));
    }
    if gpki_pki::time::unix_seconds(&tbs.validity.not_after) < now {
        return Ok(Some(Why::Expired));
    }
    if gpki_pki::time::unix_seconds(&tbs.validity.not_before) > now {
        return Ok(Some(Why::NotYetValid));
    }
    Ok(None)
}
