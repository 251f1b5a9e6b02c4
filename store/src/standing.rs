//! Whether a CA may sign (design invariant 8): its own certificate and every CA
//! certificate above it must be in force: issued, not revoked, not on hold, within
//! its validity. The store's rows are the truth; a CA certificate the store does
//! not know is not assumed good.

use gpki_pki::crl::RevocationReason;
use gpki_pki::{Error, Result};

use std::collections::HashMap;

use sqlx::Row;

use crate::certificates::compromised_in;
use crate::{db_err, AuthorityRecord, CertStatus, Store};

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

/// The standing of CA `record` at `now`: from it to its root, the first
/// certificate not in force. Reads only, and one statement: the CA records come
/// from the store's cache of active CAs and every certificate row of the chain,
/// with whether its key is compromised, is read at once. The CA, the TSA, the
/// services' client checks and `gpki ca list` share it.
pub async fn standing(store: &Store, record: &AuthorityRecord, now: i64) -> Result<Standing> {
    if record.status != "active" {
        return Ok(Standing::Pending);
    }
    // The chain, from the CA up, as far as MAX_DEPTH (a parent loop written into
    // the store goes no further).
    let mut chain: Vec<Level> = Vec::new();
    let mut walk = Some(record.clone());
    while let Some(r) = walk {
        if chain.len() == MAX_DEPTH {
            chain.push(Level::of(r)?);
            break;
        }
        walk = match r.parent_id {
            Some(p) if p != r.id => Some(store.authority(p).await?),
            _ => None,
        };
        chain.push(Level::of(r)?);
    }
    let looped = chain.len() > MAX_DEPTH;
    let checked = &chain[..chain.len().min(MAX_DEPTH)];
    let rows = chain_rows(store, checked).await?;
    for level in checked {
        let key = (level.issuer_id, level.serial.clone().unwrap_or_default());
        let why = match (&level.serial, rows.get(&key)) {
            (None, _) | (_, None) => Some(Why::Unknown),
            (Some(_), Some(row)) => level.why_not_in_force(row, now),
        };
        if let Some(why) = why {
            return Ok(Standing::Unusable {
                ca: level.name.clone(),
                why,
            });
        }
    }
    if looped {
        // The chain cannot be established.
        return Ok(Standing::Unusable {
            ca: chain[MAX_DEPTH].name.clone(),
            why: Why::Unknown,
        });
    }
    Ok(Standing::Active)
}

/// More CAs above one another than any real hierarchy has.
const MAX_DEPTH: usize = 16;

/// One CA of a chain: where its certificate's row is and when it is valid.
struct Level {
    name: String,
    /// A root's certificate is recorded under the root itself.
    issuer_id: i64,
    /// None when the CA has no certificate.
    serial: Option<String>,
    not_before: i64,
    not_after: i64,
}

/// A CA certificate's row, and whether its key was revoked as compromised in
/// any certificate of the store.
struct ChainRow {
    status: CertStatus,
    reason: Option<i64>,
    compromised: bool,
}

impl Level {
    fn of(r: AuthorityRecord) -> Result<Level> {
        let issuer_id = r.parent_id.unwrap_or(r.id);
        let Some(der) = r.cert_der.as_deref() else {
            return Ok(Level {
                name: r.name,
                issuer_id,
                serial: None,
                not_before: 0,
                not_after: 0,
            });
        };
        let facts = gpki_pki::cert::ca_facts(der).map_err(|e| {
            Error::internal(format!(
                "stored certificate of CA `{}` does not decode: {e}",
                r.name
            ))
        })?;
        Ok(Level {
            name: r.name,
            issuer_id,
            serial: Some(facts.serial.clone()),
            not_before: facts.not_before,
            not_after: facts.not_after,
        })
    }

    fn why_not_in_force(&self, row: &ChainRow, now: i64) -> Option<Why> {
        match row.status {
            CertStatus::Revoked => {
                return Some(Why::Revoked(
                    row.reason.and_then(RevocationReason::from_code),
                ))
            }
            CertStatus::Hold => return Some(Why::Hold),
            CertStatus::Issued => {}
            CertStatus::Pending | CertStatus::Abandoned => return Some(Why::Unknown),
        }
        if row.compromised {
            return Some(Why::KeyCompromised);
        }
        if self.not_after < now {
            return Some(Why::Expired);
        }
        if self.not_before > now {
            return Some(Why::NotYetValid);
        }
        None
    }
}

/// The rows of `chain`'s certificates, by (issuer id, serial), in one statement.
async fn chain_rows(store: &Store, chain: &[Level]) -> Result<HashMap<(i64, String), ChainRow>> {
    let wanted: Vec<(i64, &str)> = chain
        .iter()
        .filter_map(|l| l.serial.as_deref().map(|s| (l.issuer_id, s)))
        .collect();
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let pairs: Vec<String> = (0..wanted.len())
        .map(|i| {
            format!(
                "(c.issuer_id = ${} AND c.serial = ${})",
                2 * i + 1,
                2 * i + 2
            )
        })
        .collect();
    let sql = format!(
        "SELECT c.issuer_id, c.serial, c.status, c.reason, \
         CAST(CASE WHEN EXISTS (SELECT 1 FROM certificates k WHERE k.spki_sha256 = c.spki_sha256 \
         AND {}) THEN 1 ELSE 0 END AS BIGINT) AS compromised \
         FROM certificates c WHERE {}",
        compromised_in("k"),
        pairs.join(" OR ")
    );
    let mut q = sqlx::query(&sql);
    for (issuer, serial) in &wanted {
        q = q.bind(*issuer).bind(*serial);
    }
    for row in q.fetch_all(store.pool()).await.map_err(db_err)? {
        let issuer_id: i64 = row.try_get("issuer_id").map_err(db_err)?;
        let serial: String = row.try_get("serial").map_err(db_err)?;
        let status: String = row.try_get("status").map_err(db_err)?;
        out.insert(
            (issuer_id, serial),
            ChainRow {
                status: status.parse()?,
                reason: row.try_get("reason").map_err(db_err)?,
                compromised: row.try_get::<i64, _>("compromised").map_err(db_err)? != 0,
            },
        );
    }
    Ok(out)
}
