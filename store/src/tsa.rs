//! The timestamp authority's records: serial blocks and the token log.

use gpki_pki::Result;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::rows::record;
use crate::{db_err, Store};

/// One issued token, as logged for disputes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRecord {
    /// The TSA's name (its responder certificate's configured name).
    pub tsa: String,
    /// The token's serialNumber, lower-case hex.
    pub serial: String,
    /// genTime, Unix seconds.
    pub gen_time: i64,
    pub policy: String,
    /// The messageImprint's hash algorithm (`sha256` …) and hash (hex).
    pub hash_alg: String,
    pub imprint: String,
    /// The request's nonce, hex, if it had one.
    pub nonce: Option<String>,
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord> {
    Ok(record!(
        row,
        TokenRecord {
            tsa,
            serial,
            gen_time,
            policy,
            hash_alg,
            imprint,
            nonce
        }
    ))
}

/// Logs issued tokens in one statement: the rows travel as one JSON array bound as
/// a single parameter and are unpacked by the database (`json_each` on SQLite,
/// `json_array_elements` on PostgreSQL), which costs a fraction of binding seven
/// parameters a row.
async fn log_on(
    conn: &mut sqlx::AnyConnection,
    backend: crate::Backend,
    tokens: &[TokenRecord],
) -> Result<()> {
    if tokens.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = tokens
        .iter()
        .map(|t| {
            serde_json::json!([
                t.tsa, t.serial, t.gen_time, t.policy, t.hash_alg, t.imprint, t.nonce
            ])
        })
        .collect();
    let payload = serde_json::Value::Array(rows).to_string();
    let sql = match backend {
        crate::Backend::Sqlite => {
            "INSERT INTO tsa_tokens (tsa, serial, gen_time, policy, hash_alg, imprint, nonce) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6 \
             FROM json_each($1)"
        }
        crate::Backend::Postgres => {
            "INSERT INTO tsa_tokens (tsa, serial, gen_time, policy, hash_alg, imprint, nonce) \
             SELECT r ->> 0, r ->> 1, (r ->> 2)::bigint, r ->> 3, r ->> 4, r ->> 5, r ->> 6 \
             FROM json_array_elements($1::json) AS r"
        }
    };
    let done = sqlx::query(sql)
        .bind(payload)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    if done.rows_affected() != tokens.len() as u64 {
        return Err(gpki_pki::Error::internal(format!(
            "token log: {} of {} rows written",
            done.rows_affected(),
            tokens.len()
        )));
    }
    Ok(())
}

/// A connection kept for the token log: its page cache stays warm, where a pooled
/// connection would re-read pages another connection changed.
pub struct TokenLog {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    backend: crate::Backend,
}

impl TokenLog {
    /// Logs `tokens` in one statement (one transaction).
    pub async fn write(&mut self, tokens: &[TokenRecord]) -> Result<()> {
        log_on(&mut self.conn, self.backend, tokens).await
    }
}

impl Store {
    /// Reserves `count` consecutive serials for TSA `tsa` and returns the first.
    /// Concurrent callers (other processes included) get disjoint blocks.
    pub async fn allocate_tsa_serials(&self, tsa: &str, count: i64) -> Result<i64> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO tsa_serials (tsa, next) VALUES ($1, 1) ON CONFLICT (tsa) DO NOTHING",
        )
        .bind(tsa)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let row =
            sqlx::query("UPDATE tsa_serials SET next = next + $1 WHERE tsa = $2 RETURNING next")
                .bind(count)
                .bind(tsa)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
        let next: i64 = row.try_get("next").map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(next - count)
    }

    /// Logs issued tokens (one statement, one transaction) on a pooled connection.
    pub async fn log_tokens(&self, tokens: &[TokenRecord]) -> Result<()> {
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        log_on(&mut conn, self.backend(), tokens).await
    }

    /// A connection of its own for a process that logs tokens continuously.
    pub async fn token_log(&self) -> Result<TokenLog> {
        Ok(TokenLog {
            conn: self.pool().acquire().await.map_err(db_err)?,
            backend: self.backend(),
        })
    }

    /// The logged tokens with serial `serial` (hex), any TSA.
    pub async fn token_by_serial(&self, serial: &str) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query(
            "SELECT tsa, serial, gen_time, policy, hash_alg, imprint, nonce FROM tsa_tokens WHERE serial = $1",
        )
        .bind(serial.to_ascii_lowercase())
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(token_from_row).collect()
    }

    /// The logged tokens for a message imprint (hex).
    pub async fn tokens_by_imprint(&self, imprint: &str) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query(
            "SELECT tsa, serial, gen_time, policy, hash_alg, imprint, nonce FROM tsa_tokens WHERE imprint = $1 ORDER BY id",
        )
        .bind(imprint.to_ascii_lowercase())
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(token_from_row).collect()
    }
}
