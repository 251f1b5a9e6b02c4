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

/// [`standing`] now, for the hot path (every issuance asks it of its CA), with
/// concurrent askers about one CA sharing a read. No asker gets an answer read
/// before it asked: it waits for the next read, which starts as soon as the one
/// under way (if any) ends, on a task of its own (an asker that goes away stops
/// no one's read). So one read per CA is under way at a time and each serves
/// every asker that came while the one before it ran, where each issuance made
/// its own read before. A read that cannot finish (its task panicked) is
/// Unavailable to its askers, and the next asker starts a fresh one.
pub async fn current(store: &Store, record: &AuthorityRecord) -> Result<Standing> {
    if record.status != "active" {
        return Ok(Standing::Pending);
    }
    let (mut answer, start) = {
        let mut reads = store
            .standing_reads
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = reads.entry(record.id).or_default();
        let next = slot
            .next
            .get_or_insert_with(|| std::sync::Arc::new(tokio::sync::watch::channel(None).0));
        let answer = next.subscribe();
        let start = !slot.running;
        slot.running = true;
        (answer, start)
    };
    if start {
        // The guard travels with the task: a task dropped before it first runs
        // (a runtime shutting down), or a spawn that panics, still clears the slot.
        let guard = ReadsGuard(store.standing_reads.clone(), record.id, true);
        tokio::spawn(run_reads(store.clone(), record.clone(), guard));
    }
    let read = match answer.wait_for(Option::is_some).await {
        Ok(v) => v.clone().expect("waited for Some"),
        Err(_) => Err(Error::new(
            gpki_pki::error::ErrorKind::Unavailable,
            format!("the standing of CA `{}` could not be read", record.name),
        )),
    };
    read
}

/// The standing reads under way and asked for, by CA id (an active CA's record
/// never changes, so the id names it).
#[derive(Default, Clone)]
pub(crate) struct Reads(std::sync::Arc<std::sync::Mutex<HashMap<i64, ReadSlot>>>);

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standing::Reads")
    }
}

type Answer = tokio::sync::watch::Sender<Option<Result<Standing>>>;

#[derive(Default)]
pub(crate) struct ReadSlot {
    /// A task is reading for this CA.
    running: bool,
    /// The askers waiting for the next read.
    next: Option<std::sync::Arc<Answer>>,
}

/// Clears a CA's slot when its reading task ends other than by finding no asker
/// (armed: `.2`): the waiting askers' answers drop (Unavailable) and the next
/// asker starts anew.
struct ReadsGuard(Reads, i64, bool);

impl Drop for ReadsGuard {
    fn drop(&mut self) {
        if self.2 {
            let mut reads = self
                .0
                 .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            reads.remove(&self.1);
        }
    }
}

/// Reads the standing of `record` for each batch of askers in turn, until none
/// waits. If this task ends early (a panic), its guard clears the slot: the
/// waiting askers' senders drop (Unavailable) and the next asker starts anew.
async fn run_reads(store: Store, record: AuthorityRecord, mut guard: ReadsGuard) {
    loop {
        let batch = {
            let mut reads = store
                .standing_reads
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let slot = reads.entry(record.id).or_default();
            match slot.next.take() {
                Some(b) => b,
                None => {
                    slot.running = false;
                    guard.2 = false;
                    return;
                }
            }
        };
        let r = standing(&store, &record, gpki_pki::time::now()).await;
        #[cfg(test)]
        tests::slow_answer().await;
        batch.send_replace(Some(r));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{event, store};
    use crate::NewCertificate;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Milliseconds between a read's end and its answer: widens the window in
    /// which an asker could be handed a read that began before it asked.
    static SLOW_ANSWER_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    pub(super) async fn slow_answer() {
        let ms = SLOW_ANSWER_MS.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }

    /// A self-signed CA certificate made by OpenSSL, serial 0x42, valid for a day.
    fn self_signed() -> Vec<u8> {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "ca").unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        let serial = openssl::bn::BigNum::from_u32(0x42).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        let now = gpki_pki::time::now();
        b.set_not_before(&openssl::asn1::Asn1Time::from_unix(now - 60).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::from_unix(now + 86_400).unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        b.build().to_der().unwrap()
    }

    /// An active root `ca` whose certificate row is issued.
    async fn root(store: &Store) -> AuthorityRecord {
        let ca = crate::test_support::ca(store).await;
        let der = self_signed();
        let row = store
            .record_tbs(&NewCertificate {
                issuer_id: ca.id,
                serial: "42".into(),
                subject: "CN=ca".into(),
                profile: "root-ca".into(),
                not_before: 0,
                not_after: i64::MAX,
                spki_sha256: "00".repeat(32),
                tbs: vec![0],
                renewed_from: None,
                request_key: None,
            })
            .await
            .unwrap();
        store.mark_issued(row, &der, &event()).await.unwrap();
        store
            .activate_authority(ca.id, b"k", b"s", b"n", &der, &event())
            .await
            .unwrap();
        store.authority(ca.id).await.unwrap()
    }

    /// Askers share reads, but none is answered from a read that began before it
    /// asked: with reads kept under way by other askers all along, a hold is seen
    /// by the first asker after it is placed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shared_standing_read_is_never_older_than_the_question() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let ca = root(&store).await;
        // An active CA's record does not change (the reads are shared by its id).
        let again = store
            .activate_authority(ca.id, b"k", b"s", b"n", &self_signed(), &event())
            .await
            .unwrap_err();
        assert_eq!(again.kind, gpki_pki::ErrorKind::Conflict, "{again}");
        assert_eq!(store.authority(ca.id).await.unwrap().cert_der, ca.cert_der);
        let asks: Vec<_> = (0..64)
            .map(|_| {
                let (s, c) = (store.clone(), ca.clone());
                tokio::spawn(async move { current(&s, &c).await })
            })
            .collect();
        for a in asks {
            assert_eq!(a.await.unwrap().unwrap(), Standing::Active);
        }

        SLOW_ANSWER_MS.store(40, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let busy: Vec<_> = (0..8)
            .map(|_| {
                let (s, c, stop) = (store.clone(), ca.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut answers = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        current(&s, &c).await.unwrap();
                        answers += 1;
                    }
                    answers
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        store
            .revoke(ca.id, "42", 6, gpki_pki::time::now(), None, &event())
            .await
            .unwrap();
        let held = current(&store, &ca).await.unwrap();
        stop.store(true, Ordering::Relaxed);
        SLOW_ANSWER_MS.store(0, Ordering::Relaxed);
        let mut answers = 0;
        for b in busy {
            answers += b.await.unwrap();
        }
        assert!(
            answers > 8,
            "the reads were under way all along ({answers})"
        );
        assert_eq!(
            held,
            Standing::Unusable {
                ca: "ca".into(),
                why: Why::Hold
            }
        );
        // Nothing is left running: the slot says so, and the next asker reads anew.
        let idle = || {
            store
                .standing_reads
                .0
                .lock()
                .unwrap()
                .get(&ca.id)
                .is_none_or(|s| !s.running && s.next.is_none())
        };
        let since = std::time::Instant::now();
        while !idle() && since.elapsed() < std::time::Duration::from_secs(10) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(idle(), "the reading task ended with no asker left");
        assert_eq!(current(&store, &ca).await.unwrap(), held);
    }
}
