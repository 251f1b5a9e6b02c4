//! Anchoring the audit chain outside the store (design invariant 6). The chain is
//! unkeyed, so someone who can write to the database and knows the algorithm can
//! rebuild it after an edit. A checkpoint fixes the chain head (sequence number and
//! hash) in a file signed by a dedicated audit key held with the CA keys; the
//! files live outside the store (by default `DATA_DIR/audit/`, better on another
//! host or write-once storage) and verify with OpenSSL alone:
//!
//! ```sh
//! openssl dgst -sha256 -verify audit.pub.pem -signature checkpoint-N.sig checkpoint-N.json
//! ```
//!
//! `gpki audit verify` then checks that every checkpointed row still has the hash
//! the checkpoint names: a rebuilt chain cannot match without the audit key.
//! Rows newer than the last checkpoint are protected by the chain alone until the
//! next checkpoint (`gpki audit checkpoint` from a timer; every `gpki crl generate`
//! takes one).
//!
//! Profile changes are audited here too: a CA records the digest of every profile
//! it loads, and appends `profiles.change` whenever the set differs from the last
//! one recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gpki_pki::{Error, ErrorKind, KeyType, Result, Signer, SoftwareKey};
use gpki_store::{AuditEvent, AuditProblem, Store};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Verifier;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Ca;

/// The audit key's file name in the CA key directory.
pub const AUDIT_KEY_FILE: &str = "audit.key.pem";
/// The audit public key's file name in the checkpoint directory.
pub const AUDIT_PUB_FILE: &str = "audit.pub.pem";

/// A signed statement of the chain head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last audit sequence number covered.
    pub seq: i64,
    /// Its hash, hex.
    pub hash: String,
    /// When the checkpoint was taken (Unix seconds).
    pub at: i64,
    /// Which store (password removed).
    pub store: String,
    /// The checkpoint before this one in the same directory: its sequence number
    /// and the SHA-256 of its file. Deleting a checkpoint breaks the link.
    #[serde(default)]
    pub prev: Option<PrevCheckpoint>,
}

/// The link from a checkpoint to the one before it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PrevCheckpoint {
    pub seq: i64,
    pub sha256: String,
}

/// What `verify_checkpoints` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Anchoring {
    /// Signed checkpoints found and checked.
    pub checkpoints: usize,
    /// The newest checkpointed row (0 when none).
    pub anchored_seq: i64,
    /// Whether an audit key exists, i.e. anchoring has begun for this CA host.
    pub audit_key: bool,
    /// The SHA-256 of the trusted audit public key (DER), to compare out of band.
    pub audit_key_sha256: Option<String>,
}

/// Writes `bytes` to `path` and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io("write", path))?;
    f.write_all(bytes).map_err(io("write", path))?;
    f.sync_all().map_err(io("sync", path))
}

/// The checkpoint files of `dir`, oldest first.
fn checkpoint_files(dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("checkpoint-"))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

fn io<'a>(what: &str, path: &'a Path) -> impl Fn(std::io::Error) -> Error + 'a {
    let what = what.to_string();
    move |e| Error::internal(format!("cannot {what} {}: {e}", path.display()))
}

fn checkpoint_name(seq: i64) -> String {
    format!("checkpoint-{seq:012}")
}

impl Ca {
    /// The audit key, created (P-256, encrypted with the CA passphrase) on first use.
    /// Its public key is pinned beside it (`keys/audit.pub.pem`), where `audit
    /// verify` trusts it, not the copy among the checkpoints.
    fn audit_key(&self) -> Result<SoftwareKey> {
        let (key_dir, passphrase) = self.audit_custody()?;
        let path = key_dir.join(AUDIT_KEY_FILE);
        let key = if path.exists() {
            SoftwareKey::read_encrypted(&path, &passphrase)?
        } else {
            std::fs::create_dir_all(&key_dir).map_err(io("create", &key_dir))?;
            let key = SoftwareKey::generate(KeyType::EcP256)?;
            key.write_encrypted(&path, &passphrase)?;
            key
        };
        let pinned = key_dir.join(AUDIT_PUB_FILE);
        if !pinned.exists() {
            write_synced(
                &pinned,
                gpki_pki::pem::encode("PUBLIC KEY", key.public_key_der()).as_bytes(),
            )?;
        }
        Ok(key)
    }

    /// Signs the current chain head into `dir`: `checkpoint-SEQ.json` and its
    /// detached signature `checkpoint-SEQ.sig` (ECDSA P-256 with SHA-256, DER), plus
    /// `audit.pub.pem` the first time. Returns the checkpoint and its file.
    pub async fn audit_checkpoint(&self, dir: &Path) -> Result<(Checkpoint, PathBuf)> {
        let key = self.audit_key()?;
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let public = gpki_pki::pem::encode("PUBLIC KEY", key.public_key_der());
        let pub_path = dir.join(AUDIT_PUB_FILE);
        match std::fs::read_to_string(&pub_path) {
            Ok(existing) if existing != public => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "{} holds another audit key than {}: checkpoints there were signed by a \
                         different key",
                        pub_path.display(),
                        self.audit_custody()?.0.join(AUDIT_KEY_FILE).display()
                    ),
                ))
            }
            Ok(_) => {}
            Err(_) => std::fs::write(&pub_path, &public).map_err(io("write", &pub_path))?,
        }
        let (seq, hash) = self.store.audit_head().await?;
        let json_path = dir.join(format!("{}.json", checkpoint_name(seq)));
        let sig_path = dir.join(format!("{}.sig", checkpoint_name(seq)));
        if let (Ok(existing), true) = (std::fs::read(&json_path), sig_path.exists()) {
            if let Ok(c) = serde_json::from_slice::<Checkpoint>(&existing) {
                if c.seq == seq && c.hash == hex::encode(&hash) {
                    return Ok((c, json_path));
                }
            }
        }
        // Linked to the newest checkpoint before it, so a deleted one is noticed.
        let prev = checkpoint_files(dir)
            .into_iter()
            .filter(|p| *p != json_path)
            .filter_map(|p| {
                let body = std::fs::read(&p).ok()?;
                let c: Checkpoint = serde_json::from_slice(&body).ok()?;
                (c.seq < seq).then(|| PrevCheckpoint {
                    seq: c.seq,
                    sha256: hex::encode(openssl::sha::sha256(&body)),
                })
            })
            .max_by_key(|p| p.seq);
        let checkpoint = Checkpoint {
            seq,
            hash: hex::encode(hash),
            at: gpki_pki::time::now(),
            store: self.store.display_url(),
            prev,
        };
        let mut body = serde_json::to_vec_pretty(&checkpoint).expect("JSON of plain values");
        body.push(b'\n');
        let signature = key.sign(&body)?;
        write_synced(&sig_path, &signature)?;
        write_synced(&json_path, &body)?;
        Ok((checkpoint, json_path))
    }

    /// Appends `profiles.change` when the profiles this CA loaded differ from the
    /// last set recorded (by digest of each profile's content); nothing otherwise.
    pub async fn record_profiles(&self) -> Result<()> {
        let now: BTreeMap<String, String> = self
            .profiles
            .iter()
            .map(|p| {
                let text = serde_json::to_vec(&p.spec).expect("JSON of a profile");
                (
                    p.name().to_string(),
                    hex::encode(openssl::sha::sha256(&text)),
                )
            })
            .collect();
        let last: BTreeMap<String, String> = self
            .store
            .last_audit_detail("profiles.change")
            .await?
            .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
            .and_then(|v| serde_json::from_value(v["profiles"].clone()).ok())
            .unwrap_or_default();
        if now == last {
            return Ok(());
        }
        let changed: Vec<&String> = now
            .iter()
            .filter(|(k, v)| last.get(*k).is_some_and(|o| o != *v))
            .map(|(k, _)| k)
            .collect();
        let added: Vec<&String> = now.keys().filter(|k| !last.contains_key(*k)).collect();
        let removed: Vec<&String> = last.keys().filter(|k| !now.contains_key(*k)).collect();
        let sources: BTreeMap<&str, &str> = self
            .profiles
            .iter()
            .map(|p| (p.name(), p.source.as_str()))
            .collect();
        self.store
            .audit(&AuditEvent::new(
                &self.actor,
                "profiles.change",
                "profiles",
                json!({ "changed": changed, "added": added, "removed": removed, "profiles": now, "sources": sources }),
            ))
            .await
    }
}

/// Checks every checkpoint in `dir` against the store: its signature under the
/// trusted audit public key (`public_key`, else the one pinned in `key_dir`), its
/// link to the checkpoint before it, and that the row it names still has the hash
/// it names. Once an audit key exists, no checkpoint at all is a problem (they were
/// deleted); on a host that never made one, the chain is reported unanchored.
pub async fn verify_checkpoints(
    store: &Store,
    dir: &Path,
    key_dir: &Path,
    public_key: Option<&Path>,
) -> Result<(Anchoring, Vec<AuditProblem>)> {
    let pinned = key_dir.join(AUDIT_PUB_FILE);
    let audit_key = key_dir.join(AUDIT_KEY_FILE).exists() || pinned.exists();
    let trusted = public_key
        .map(Path::to_path_buf)
        .or_else(|| pinned.exists().then(|| pinned.clone()));
    let names = checkpoint_files(dir);
    let mut anchoring = Anchoring {
        audit_key: audit_key || public_key.is_some(),
        ..Default::default()
    };
    let mut problems = Vec::new();
    let problem = |seq: i64, text: String| AuditProblem { seq, problem: text };
    let Some(trusted) = trusted else {
        if !names.is_empty() {
            problems.push(problem(
                0,
                format!(
                    "{} holds checkpoints but no audit key is pinned ({} is missing): give \
                     --audit-key with the key published when anchoring began",
                    dir.display(),
                    pinned.display()
                ),
            ));
        }
        return Ok((anchoring, problems));
    };
    let pem = std::fs::read(&trusted).map_err(|e| {
        Error::not_found(format!(
            "cannot read the audit public key {}: {e}",
            trusted.display()
        ))
    })?;
    let key = PKey::public_key_from_pem(&pem)
        .map_err(|e| Error::malformed(format!("{}: {e}", trusted.display())))?;
    let key_der = key
        .public_key_to_der()
        .map_err(|e| Error::internal(format!("audit key: {e}")))?;
    anchoring.audit_key_sha256 = Some(hex::encode(openssl::sha::sha256(&key_der)));
    if let Ok(copy) = std::fs::read(dir.join(AUDIT_PUB_FILE)) {
        let same = PKey::public_key_from_pem(&copy)
            .and_then(|k| k.public_key_to_der())
            .is_ok_and(|d| d == key_der);
        if !same {
            problems.push(problem(
                0,
                format!(
                    "{} is not the trusted audit key {}: the checkpoints there were signed by another key",
                    dir.join(AUDIT_PUB_FILE).display(),
                    trusted.display()
                ),
            ));
        }
    }
    if names.is_empty() {
        problems.push(problem(
            0,
            format!(
                "no checkpoint in {} although an audit key exists: the checkpoints were deleted, \
                 or this is the wrong directory",
                dir.display()
            ),
        ));
        return Ok((anchoring, problems));
    }
    // A wiped log has no head: every checkpoint then names what was lost.
    let head_seq = store.audit_head_opt().await?.map_or(0, |(seq, _)| seq);
    let mut previous: Option<PrevCheckpoint> = None;
    for json_path in &names {
        let file = json_path.display().to_string();
        let body = std::fs::read(json_path).map_err(io("read", json_path))?;
        let sig = std::fs::read(json_path.with_extension("sig")).unwrap_or_default();
        let signed = Verifier::new(MessageDigest::sha256(), &key)
            .and_then(|mut v| {
                v.update(&body)?;
                v.verify(&sig)
            })
            .unwrap_or(false);
        if !signed {
            problems.push(problem(
                0,
                format!("{file}: its signature does not verify under the audit key"),
            ));
            continue;
        }
        let Ok(cp) = serde_json::from_slice::<Checkpoint>(&body) else {
            problems.push(problem(0, format!("{file}: signed, but not a checkpoint")));
            continue;
        };
        if cp.prev != previous {
            problems.push(problem(
                cp.seq,
                format!(
                    "{file}: it follows checkpoint {} but the one before it here is {}: a checkpoint was deleted",
                    cp.prev.as_ref().map_or("none".to_string(), |p| p.seq.to_string()),
                    previous.as_ref().map_or("none".to_string(), |p| p.seq.to_string())
                ),
            ));
        }
        previous = Some(PrevCheckpoint {
            seq: cp.seq,
            sha256: hex::encode(openssl::sha::sha256(&body)),
        });
        anchoring.checkpoints += 1;
        anchoring.anchored_seq = anchoring.anchored_seq.max(cp.seq);
        problems.extend(against_the_chain(store, &cp, &file, head_seq).await?);
    }
    Ok((anchoring, problems))
}

/// What checkpoint `cp` (file `file`) finds in the chain now: its row beyond the
/// head (the log wiped or truncated), missing, or with another hash (rebuilt).
async fn against_the_chain(
    store: &Store,
    cp: &Checkpoint,
    file: &str,
    head_seq: i64,
) -> Result<Option<AuditProblem>> {
    let problem = |text: String| {
        Some(AuditProblem {
            seq: cp.seq,
            problem: text,
        })
    };
    if cp.seq == 0 {
        return Ok(None);
    }
    if cp.seq > head_seq {
        return Ok(problem(format!(
            "checkpoint of row {} ({}) is beyond the chain head {head_seq}: the log was {} after it was checkpointed",
            cp.seq,
            gpki_pki::time::rfc3339(cp.at),
            if head_seq == 0 { "wiped" } else { "truncated (rows deleted)" }
        )));
    }
    Ok(match store.audit_hash_at(cp.seq).await? {
        None => problem(format!(
            "row {} named by checkpoint {file} is missing",
            cp.seq
        )),
        Some(h) if hex::encode(&h) != cp.hash => problem(format!(
            "row {}'s hash differs from the one checkpointed at {}: the chain was rebuilt \
             after an edit at or before row {}",
            cp.seq,
            gpki_pki::time::rfc3339(cp.at),
            cp.seq
        )),
        Some(_) => None,
    })
}
