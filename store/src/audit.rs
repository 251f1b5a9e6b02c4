//! The hash-chained audit log (invariant 6). Each record's hash covers the previous
//! record's hash and its own canonical content; `audit_head` holds the last sequence
//! number and hash, so deleting the newest rows is caught as well as editing,
//! inserting or deleting any row in the middle.

use gpki_pki::{Error, Result};
use sqlx::{AnyConnection, Row};

use crate::{db_err, Store};

/// What happened, by whom, to what.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEvent {
    pub actor: String,
    /// A dotted verb: `ca.init-root`, `cert.issue`, `cert.revoke`, `crl.generate` …
    pub action: String,
    /// What it happened to: `ca:mois`, `cert:mois/4f2a…`.
    pub target: String,
    pub detail: serde_json::Value,
}

impl AuditEvent {
    pub fn new(
        actor: &str,
        action: &str,
        target: impl Into<String>,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent {
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.into(),
            detail,
        }
    }
}

/// One thing `audit verify` found wrong, naming the row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditProblem {
    pub seq: i64,
    pub problem: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditReport {
    pub rows: i64,
    pub head_seq: i64,
    pub problems: Vec<AuditProblem>,
}

impl AuditReport {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

fn record_hash(
    prev: &[u8],
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Vec<u8> {
    // Canonical form: a JSON array, so no field can bleed into the next.
    let canonical = serde_json::to_vec(&(seq, at, actor, action, target, detail))
        .expect("JSON of plain values");
    let mut h = openssl::sha::Sha256::new();
    h.update(prev);
    h.update(&canonical);
    h.finish().to_vec()
}

/// Appends `event` inside the caller's transaction.
pub(crate) async fn append(conn: &mut AnyConnection, event: &AuditEvent, at: i64) -> Result<()> {
    append_many(conn, &[event], at).await
}

/// Appends `events` in order inside the caller's transaction: the head is moved
/// once, the chain is computed here, and the rows go in as multi-row INSERTs. On
/// PostgreSQL the UPDATE locks the head row, which serialises concurrent writers.
pub(crate) async fn append_many(
    conn: &mut AnyConnection,
    events: &[&AuditEvent],
    at: i64,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let row = sqlx::query("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
        .bind(events.len() as i64)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    let last: i64 = row.try_get("seq").map_err(db_err)?;
    let mut prev: Vec<u8> = row.try_get("hash").map_err(db_err)?;
    let first = last - events.len() as i64 + 1;
    let mut rows = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let seq = first + i as i64;
        let detail = event.detail.to_string();
        let hash = record_hash(
            &prev,
            seq,
            at,
            &event.actor,
            &event.action,
            &event.target,
            &detail,
        );
        rows.push((
            seq,
            *event,
            detail,
            std::mem::replace(&mut prev, hash.clone()),
            hash,
        ));
    }
    // PostgreSQL moves the head's hash in the statement of the first rows (a
    // data-modifying WITH, one round trip less per append); SQLite has none.
    let with_head = conn.backend_name().eq_ignore_ascii_case("postgresql");
    if !with_head {
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
            .bind(&prev)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    // 100 rows of 8 values stay far below both backends' bind-parameter limits.
    for (i, part) in rows.chunks(100).enumerate() {
        let head = with_head && i == 0;
        let first = usize::from(head);
        let values: Vec<String> = (0..part.len())
            .map(|r| {
                let b = first + r * 8;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8
                )
            })
            .collect();
        let sql = format!(
            "{}INSERT INTO audit_log (seq, at, actor, action, target, detail, prev_hash, hash) VALUES {}",
            if head {
                "WITH head AS (UPDATE audit_head SET hash = $1 WHERE id = 1) "
            } else {
                ""
            },
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        if head {
            q = q.bind(&prev);
        }
        for (seq, event, detail, prev_hash, hash) in part {
            q = q
                .bind(*seq)
                .bind(at)
                .bind(&event.actor)
                .bind(&event.action)
                .bind(&event.target)
                .bind(detail)
                .bind(prev_hash)
                .bind(hash);
        }
        q.execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(())
}

/// One audit row as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

impl Store {
    /// Appends an audit record on its own (for changes with no row of their own).
    pub async fn audit(&self, event: &AuditEvent) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        append(&mut tx, event, gpki_pki::time::now()).await?;
        tx.commit().await.map_err(db_err)
    }

    /// Walks the chain and reports every row that was edited, inserted or deleted.
    pub async fn audit_verify(&self) -> Result<AuditReport> {
        let rows = sqlx::query("SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit_log ORDER BY seq")
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        let mut problems = Vec::new();
        let (head_seq, head_hash) = match self.audit_head_opt().await? {
            Some(h) => h,
            None => {
                // Not an internal error: the store was emptied behind the chain.
                problems.push(AuditProblem {
                    seq: 0,
                    problem: "the chain head is missing: the audit log was wiped".into(),
                });
                (0, vec![0u8; 32])
            }
        };

        let mut expected_seq = 1i64;
        let mut prev_hash = vec![0u8; 32];
        for row in &rows {
            let seq: i64 = row.try_get("seq").map_err(db_err)?;
            let at: i64 = row.try_get("at").map_err(db_err)?;
            let actor: String = row.try_get("actor").map_err(db_err)?;
            let action: String = row.try_get("action").map_err(db_err)?;
            let target: String = row.try_get("target").map_err(db_err)?;
            let detail: String = row.try_get("detail").map_err(db_err)?;
            let stored_prev: Vec<u8> = row.try_get("prev_hash").map_err(db_err)?;
            let stored_hash: Vec<u8> = row.try_get("hash").map_err(db_err)?;
            if seq > expected_seq {
                let missing = if seq - expected_seq == 1 {
                    format!("row {expected_seq} is missing (deleted)")
                } else {
                    format!("rows {expected_seq}..{} are missing (deleted)", seq - 1)
                };
                problems.push(AuditProblem {
                    seq: expected_seq,
                    problem: missing,
                });
            }
            if stored_prev != prev_hash {
                problems.push(AuditProblem {
                    seq,
                    problem: format!("row {seq} does not chain to the row before it (inserted, or a row before it was deleted or edited)"),
                });
            }
            let recomputed = record_hash(&stored_prev, seq, at, &actor, &action, &target, &detail);
            if recomputed != stored_hash {
                problems.push(AuditProblem {
                    seq,
                    problem: format!("row {seq} was edited: its content does not match its hash"),
                });
            }
            prev_hash = stored_hash;
            expected_seq = seq + 1;
        }
        let last = expected_seq - 1;
        if head_seq > last {
            problems.push(AuditProblem {
                seq: last + 1,
                problem: format!(
                    "rows {}..{head_seq} at the end are missing (deleted)",
                    last + 1
                ),
            });
        } else if head_seq < last {
            problems.push(AuditProblem {
                seq: head_seq + 1,
                problem: format!("rows after {head_seq} were inserted outside the chain head"),
            });
        } else if head_hash != prev_hash {
            problems.push(AuditProblem {
                seq: last,
                problem: format!("row {last} does not match the chain head's hash"),
            });
        }
        Ok(AuditReport {
            rows: rows.len() as i64,
            head_seq,
            problems,
        })
    }

    /// The chain head: the last sequence number and its hash.
    pub async fn audit_head(&self) -> Result<(i64, Vec<u8>)> {
        self.audit_head_opt().await?.ok_or_else(|| {
            gpki_pki::Error::new(
                gpki_pki::ErrorKind::Conflict,
                "the audit chain head is missing: the audit log was wiped (gpki audit verify)",
            )
        })
    }

    /// The chain head, or None when its row is gone (a wiped log).
    pub async fn audit_head_opt(&self) -> Result<Option<(i64, Vec<u8>)>> {
        let Some(head) = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        Ok(Some((
            head.try_get("seq").map_err(db_err)?,
            head.try_get("hash").map_err(db_err)?,
        )))
    }

    /// The stored hash of audit row `seq`, if the row exists.
    pub async fn audit_hash_at(&self, seq: i64) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(seq)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.map(|r| r.try_get("hash").map_err(db_err)).transpose()
    }

    /// The detail of the newest audit row with `action`, if any.
    pub async fn last_audit_detail(&self, action: &str) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT detail FROM audit_log WHERE action = $1 ORDER BY seq DESC LIMIT 1")
                .bind(action)
                .fetch_optional(self.pool())
                .await
                .map_err(db_err)?;
        row.map(|r| r.try_get("detail").map_err(db_err)).transpose()
    }

    /// The newest `limit` audit rows, newest first.
    pub async fn audit_tail(&self, limit: i64) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query("SELECT seq, at, actor, action, target, detail FROM audit_log ORDER BY seq DESC LIMIT $1")
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    seq: r.try_get("seq").map_err(db_err)?,
                    at: r.try_get("at").map_err(db_err)?,
                    actor: r.try_get("actor").map_err(db_err)?,
                    action: r.try_get("action").map_err(db_err)?,
                    target: r.try_get("target").map_err(db_err)?,
                    detail: r.try_get("detail").map_err(db_err)?,
                })
            })
            .collect::<Result<_>>()
            .map_err(|e: Error| e)
    }
}
