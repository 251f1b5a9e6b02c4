//! The timestamp authority's records: serial blocks and the token log.

use gpki_pki::Result;
use sqlx::any::AnyRow;
use sqlx::Row;

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
    Ok(TokenRecord {
        tsa: row.try_get("tsa").map_err(db_err)?,
        serial: row.try_get("serial").map_err(db_err)?,
        gen_time: row.try_get("gen_time").map_err(db_err)?,
        policy: row.try_get("policy").map_err(db_err)?,
        hash_alg: row.try_get("hash_alg").map_err(db_err)?,
        imprint: row.try_get("imprint").map_err(db_err)?,
        nonce: row.try_get("nonce").map_err(db_err)?,
    })
}

/// Rows per INSERT when logging tokens (SQLite allows 32,766 parameters).
const LOG_CHUNK: usize = 500;

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

    /// Logs issued tokens, many rows per statement, in one transaction.
    pub async fn log_tokens(&self, tokens: &[TokenRecord]) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        for chunk in tokens.chunks(LOG_CHUNK) {
            let mut sql = String::from(
                "INSERT INTO tsa_tokens (tsa, serial, gen_time, policy, hash_alg, imprint, nonce) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 7;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7
                ));
            }
            let mut q = sqlx::query(&sql);
            for t in chunk {
                q = q
                    .bind(&t.tsa)
                    .bind(&t.serial)
                    .bind(t.gen_time)
                    .bind(&t.policy)
                    .bind(&t.hash_alg)
                    .bind(&t.imprint)
                    .bind(&t.nonce);
            }
            q.execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
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
