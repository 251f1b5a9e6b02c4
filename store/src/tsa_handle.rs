//! The store as the timestamp authority sees it: [`TsaStore`], serial blocks and
//! the token log to write, its certificate's CA and status to read, and nothing
//! else (no certificate, request or key archive is the TSA's to change).

use gpki_pki::Result;

use crate::{AuthorityRecord, Standing, StatusRow, Store, TokenLog, TokenRecord};

/// The TSA's handle on the store.
///
/// ```compile_fail
/// async fn revoke(tsa: &gpki_store::TsaStore) {
///     // The TSA revokes nothing: this does not build.
///     let _ = tsa.revoke(1, "0a", 1, 0, None, todo!()).await;
/// }
/// ```
#[derive(Clone)]
pub struct TsaStore {
    store: Store,
}

impl TsaStore {
    /// Opens the store at `url`, its schema brought up to date.
    pub async fn open(url: &str) -> Result<TsaStore> {
        Ok(TsaStore {
            store: Store::open(url).await?,
        })
    }

    /// The first of `count` serials reserved for TSA `tsa`.
    pub async fn allocate_tsa_serials(&self, tsa: &str, count: i64) -> Result<i64> {
        self.store.allocate_tsa_serials(tsa, count).await
    }

    /// Logs `tokens` in one transaction.
    pub async fn log_tokens(&self, tokens: &[TokenRecord]) -> Result<()> {
        self.store.log_tokens(tokens).await
    }

    /// A connection of its own for logging tokens.
    pub async fn token_log(&self) -> Result<TokenLog> {
        self.store.token_log().await
    }

    /// The CAs of the store (to find the TSA certificate's issuer).
    pub async fn authorities(&self) -> Result<Vec<AuthorityRecord>> {
        self.store.authorities().await
    }

    /// Whether CA `record` may sign at `now`.
    pub async fn standing(&self, record: &AuthorityRecord, now: i64) -> Result<Standing> {
        crate::standing::standing(&self.store, record, now).await
    }

    /// The status of certificate `serial` of CA `issuer_id`.
    pub async fn status_of(&self, issuer_id: i64, serial: &str) -> Result<Option<StatusRow>> {
        self.store.status_of(issuer_id, serial).await
    }
}
