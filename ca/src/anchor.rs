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
    fn audit_key(&self) -> Result<SoftwareKey> {
        let path = self.key_dir.join(AUDIT_KEY_FILE);
        if path.exists() {
            return SoftwareKey::read_encrypted(&path, &self.passphrase);
        }
        std::fs::create_dir_all(&self.key_dir).map_err(io("create", &self.key_dir))?;
        let key = SoftwareKey::generate(KeyType::EcP256)?;
        key.write_encrypted(&path, &self.passphrase)?;
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
                        self.key_dir.join(AUDIT_KEY_FILE).display()
                    ),
                ))
            }
            Ok(_) => {}
            Err(_) => std::fs::write(&pub_path, &public).map_err(io("write", &pub_path))?,
        }
        let (seq, hash) = self.store.audit_head().await?;
        let checkpoint = Checkpoint {
            seq,
            hash: hex::encode(hash),
            at: gpki_pki::time::now(),
            store: self.store.display_url(),
        };
        let json_path = dir.join(format!("{}.json", checkpoint_name(seq)));
        if let Ok(existing) = std::fs::read(&json_path) {
            if serde_json::from_slice::<Checkpoint>(&existing)
                .is_ok_and(|c| c.seq == seq && c.hash == checkpoint.hash)
            {
                return Ok((checkpoint, json_path));
            }
        }
        let mut body = serde_json::to_vec_pretty(&checkpoint).expect("JSON of plain values");
        body.push(b'\n');
        let signature = key.sign(&body)?;
        let sig_path = dir.join(format!("{}.sig", checkpoint_name(seq)));
        std::fs::write(&sig_path, &signature).map_err(io("write", &sig_path))?;
        std::fs::write(&json_path, &body).map_err(io("write", &json_path))?;
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
/// audit public key (`public_key`, default `dir/audit.pub.pem`), and that the row
/// it names still has the hash it names. An empty or absent directory yields no
/// problems (and no anchoring).
pub async fn verify_checkpoints(
    store: &Store,
    dir: &Path,
    public_key: Option<&Path>,
) -> Result<(usize, Vec<AuditProblem>)> {
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
        Err(_) => return Ok((0, Vec::new())),
    };
    if names.is_empty() {
        return Ok((0, Vec::new()));
    }
    names.sort();
    let pub_path = public_key
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(AUDIT_PUB_FILE));
    let pem = std::fs::read(&pub_path).map_err(|e| {
        Error::not_found(format!(
            "cannot read the audit public key {}: {e}",
            pub_path.display()
        ))
    })?;
    let key = PKey::public_key_from_pem(&pem)
        .map_err(|e| Error::malformed(format!("{}: {e}", pub_path.display())))?;
    let (head_seq, _) = store.audit_head().await?;
    let mut problems = Vec::new();
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
            problems.push(AuditProblem {
                seq: 0,
                problem: format!("{file}: its signature does not verify under the audit key"),
            });
            continue;
        }
        let Ok(cp) = serde_json::from_slice::<Checkpoint>(&body) else {
            problems.push(AuditProblem {
                seq: 0,
                problem: format!("{file}: signed, but not a checkpoint"),
            });
            continue;
        };
        if cp.seq == 0 {
            continue;
        }
        if cp.seq > head_seq {
            problems.push(AuditProblem {
                seq: cp.seq,
                problem: format!(
                    "checkpoint of row {} ({}) is beyond the chain head {head_seq}: rows were deleted",
                    cp.seq,
                    gpki_pki::time::rfc3339(cp.at)
                ),
            });
            continue;
        }
        match store.audit_hash_at(cp.seq).await? {
            None => problems.push(AuditProblem {
                seq: cp.seq,
                problem: format!("row {} named by checkpoint {file} is missing", cp.seq),
            }),
            Some(h) if hex::encode(&h) != cp.hash => problems.push(AuditProblem {
                seq: cp.seq,
                problem: format!(
                    "row {}'s hash differs from the one checkpointed at {}: the chain was rebuilt \
                     after an edit at or before row {}",
                    cp.seq,
                    gpki_pki::time::rfc3339(cp.at),
                    cp.seq
                ),
            }),
            Some(_) => {}
        }
    }
    Ok((names.len(), problems))
}
