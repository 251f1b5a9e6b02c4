//! The gpki certificate store: one schema on SQLite (embedded default) and
//! PostgreSQL (shared by several hosts).
//!
//! **Architecture invariant:** this is the only crate that writes SQL. Services call
//! typed functions (`record_tbs`, `revoke`, `record_crl` …); each state change appends
//! its hash-chained audit record in the same transaction.
#![forbid(unsafe_code)]

mod archive_handle;
mod audit;
mod certificates;
mod credentials;
mod crls;
pub mod failpoint;
mod handle;
mod issuance_handle;
mod kmi;
mod offers;
mod peers;
mod ra;
mod reader;
mod request_handle;
mod revocation;
mod rows;
mod scope;
pub mod standing;
mod status;
#[cfg(test)]
mod test_support;
mod tsa;
mod tsa_handle;
mod writer;

use std::str::FromStr;
use std::sync::{Arc, Once, RwLock};
use std::time::Duration;

use gpki_pki::{Error, ErrorKind, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Executor, Row};

pub use archive_handle::KeyArchive;
pub use audit::{AuditEvent, AuditProblem, AuditReport, AuditRow};
pub use certificates::{CertFilter, CertStatus, CertificateRecord, NewCertificate};
pub use credentials::{
    CredentialRecord, IssuedWith, NewCredential, StatusListRecord, REVOCATION_REASONS,
};
pub use crls::{CrlAllocation, CrlEntries, CrlRecord, NewCrl};
pub use issuance_handle::IssuanceLog;
pub use kmi::{ArchiveRecord, KraRecord, NewApproval, NewArchive, OfficerRecord, RecoveryRecord};
pub use offers::{NewOffer, OfferRecord};
pub use peers::InForce;
pub use ra::{
    check_operator_name, Enrolment, IdentityRecord, NewRa, NewRequest, OperatorRecord, RaChange,
    RaRecord, RaRequest, ServiceClient, Transition,
};
pub use reader::StatusReader;
pub use request_handle::RequestBook;
pub use standing::{standing, Standing};
pub use status::{StatusListener, StatusMark, StatusRow, STATUS_CHANNEL};
pub use tsa::{TokenLog, TokenRecord};
pub use tsa_handle::TsaStore;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// A pooled PostgreSQL connection idle this long is pinged before it is used
/// again (HikariCP's "alive bypass window" is the same idea, at 500 ms).
const IDLE_PING_AFTER: Duration = Duration::from_secs(1);

/// Which database a store URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    /// Active CA rows, which never change once active (only `pending` → `active`
    /// writes them; the sequences that do change are not part of the record).
    /// Whether a CA may sign is never cached: that is its certificate's row.
    active_cas: Arc<RwLock<ActiveCas>>,
    /// Group commit for the services' hot writes.
    writer: Arc<writer::Writer>,
    /// The writer's connections: `pool` itself on SQLite.
    writer_pool: AnyPool,
    /// The standing reads under way, by CA ([`standing::current`]).
    standing_reads: standing::Reads,
}

#[derive(Default, Debug)]
struct ActiveCas {
    by_id: std::collections::HashMap<i64, AuthorityRecord>,
    by_name: std::collections::HashMap<String, i64>,
    /// By the DER of the subject name of their certificates (a client
    /// certificate's issuer name finds its CA here).
    by_subject: std::collections::HashMap<Vec<u8>, Vec<i64>>,
}

impl Store {
    fn cached_ca(&self, id: Option<i64>, name: Option<&str>) -> Option<AuthorityRecord> {
        let c = self.active_cas.read().expect("CA cache");
        let id = id.or_else(|| name.and_then(|n| c.by_name.get(n).copied()))?;
        c.by_id.get(&id).cloned()
    }

    fn remember_ca(&self, r: &AuthorityRecord) {
        if r.status == "active" {
            let subject = r
                .cert_der
                .as_deref()
                .and_then(|d| gpki_pki::cert::decode(d).ok())
                .and_then(|c| der::Encode::to_der(&c.tbs_certificate.subject).ok());
            let mut c = self.active_cas.write().expect("CA cache");
            c.by_name.insert(r.name.clone(), r.id);
            if c.by_id.insert(r.id, r.clone()).is_none() {
                if let Some(subject) = subject {
                    c.by_subject.entry(subject).or_default().push(r.id);
                }
            }
        }
    }

    /// The cached active CAs whose certificate's subject is `name_der`.
    fn cached_cas_named(&self, name_der: &[u8]) -> Vec<AuthorityRecord> {
        let c = self.active_cas.read().expect("CA cache");
        c.by_subject
            .get(name_der)
            .map(|ids| ids.iter().filter_map(|i| c.by_id.get(i).cloned()).collect())
            .unwrap_or_default()
    }
}

/// A CA as the store knows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuthorityRecord {
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
    /// `pending` until its certificate is signed, then `active`.
    pub status: String,
    pub subject: String,
    pub key_type: String,
    pub signature_algorithm: String,
    pub key_path: String,
    /// Its key is kept offline (a root always): the online CA service refuses
    /// every operation for it. Fixed when the CA is made.
    pub offline: bool,
    #[serde(skip)]
    pub key_id: Option<Vec<u8>>,
    #[serde(skip)]
    pub cert_der: Option<Vec<u8>>,
    pub crl_url: Option<String>,
    pub ocsp_url: Option<String>,
    pub ca_issuers_url: Option<String>,
    pub created_at: i64,
}

/// A CA to be created; its certificate comes later.
#[derive(Debug, Clone)]
pub struct NewAuthority {
    pub name: String,
    pub parent_id: Option<i64>,
    pub subject: String,
    pub key_type: String,
    pub signature_algorithm: String,
    pub key_path: String,
    /// Kept offline (gpki-ca makes every root so).
    pub offline: bool,
    pub crl_url: Option<String>,
    pub ocsp_url: Option<String>,
    pub ca_issuers_url: Option<String>,
}

/// Row counts, for tests that show bad input changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub authorities: i64,
    pub certificates: i64,
    pub crls: i64,
    pub audit: i64,
}

/// Maps a database error to a gpki error: locked and unreachable stores are
/// `Unavailable`, with what the driver said.
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) => {
            let msg = d.message();
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            // PostgreSQL's 55P03 is a lock_timeout run out: like SQLite's busy,
            // the statement waited for a lock held elsewhere and changed nothing.
            if msg.contains("database is locked")
                || msg.contains("database is busy")
                || code == "55P03"
            {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("store is locked by another process: {msg}"),
                )
            } else if d.is_unique_violation() {
                Error::new(ErrorKind::AlreadyExists, format!("store: {msg}"))
            } else {
                Error::internal(format!("store: {msg}"))
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => {
            Error::new(ErrorKind::Unavailable, format!("store is unreachable: {e}"))
        }
        sqlx::Error::Configuration(_) => Error::malformed(format!("store URL: {e}")),
        _ => Error::internal(format!("store: {e}")),
    }
}

/// How long a write waits for a lock held elsewhere before it fails
/// Unavailable: SQLite's busy timeout, and PostgreSQL's `lock_timeout` on the
/// writer's connections (`GPKI_STORE_BUSY_TIMEOUT_MS`, 5 s by default).
fn busy_timeout_ms() -> u64 {
    std::env::var("GPKI_STORE_BUSY_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

/// Groups of the writer that run at once on PostgreSQL (each on a connection of
/// its own; they meet only at the audit head, which each takes last).
fn writer_lanes() -> usize {
    std::env::var("GPKI_STORE_WRITER_LANES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .clamp(1, 6)
}

/// The options of every pool of a store: `max` connections, a PostgreSQL one
/// idle for a second pinged before use, a SQLite one set up for WAL and FULL sync;
/// a `writer`'s PostgreSQL connections must carry a `lock_timeout`.
fn pool_options(backend: Backend, max: u32, writer: bool, read_only: bool) -> AnyPoolOptions {
    let busy = busy_timeout_ms();
    AnyPoolOptions::new()
        .max_connections(max)
        // sqlx pings every connection as it goes back to the pool, so one
        // handed out again at once was live a moment ago. A PostgreSQL
        // connection idle for longer may have been dropped by the server or the
        // network: that one is pinged before use (a server restart then costs
        // no failed statement). A SQLite connection is a file handle that does
        // not go stale, and pinging its worker thread only costs two handoffs.
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if backend != Backend::Sqlite && meta.idle_for >= IDLE_PING_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if writer && conn.backend_name().eq_ignore_ascii_case("postgresql") {
                    // A pooler that drops the startup's `options` would leave
                    // the writer to wait on a lock for ever: refused instead.
                    let set: String = sqlx::query_scalar("SHOW lock_timeout")
                        .fetch_one(&mut *conn)
                        .await?;
                    if set == "0" {
                        return Err(sqlx::Error::Configuration(
                            "the server did not apply the writer's lock_timeout (a connection pooler that drops the `options` startup parameter?)".into(),
                        ));
                    }
                }
                if read_only && conn.backend_name().eq_ignore_ascii_case("postgresql") {
                    // Likewise a read-only session must be one, or it is refused.
                    let set: String = sqlx::query_scalar("SHOW default_transaction_read_only")
                        .fetch_one(&mut *conn)
                        .await?;
                    if set != "on" {
                        return Err(sqlx::Error::Configuration(
                            "the server did not make the read-only session read-only (a connection pooler that drops the `options` startup parameter?)".into(),
                        ));
                    }
                }
                if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                    conn.execute(format!("PRAGMA busy_timeout = {busy}").as_str())
                        .await?;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    // FULL: a commit is on disk before the caller hands out what it records
                    // (a certificate, a token); NORMAL in WAL mode can lose the last
                    // commits on power loss (docs/benchmarks.md has the cost).
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                }
                Ok(())
            })
        })
}

/// Whether a connection may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

/// `url` with the PostgreSQL run-time parameter `name` set at connection start
/// (the `options` startup parameter, as sqlx reads it from the URL).
fn with_pg_option(url: &str, name: &str, value: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, format!("#{f}")),
        None => (url, String::new()),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[{name}]={value}{fragment}")
}

impl Store {
    /// Connects to `url` (`sqlite://path`, `postgres://…`). SQLite files and their
    /// directory are created; the database runs in WAL mode.
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with_timeout(url, Duration::from_secs(10)).await
    }

    /// Like [`Store::connect`], with how long a query waits for a connection before
    /// it fails `Unavailable` (services answering from a cache want this short).
    pub async fn connect_with_timeout(url: &str, acquire_timeout: Duration) -> Result<Store> {
        Store::connect_as(url, acquire_timeout, Access::ReadWrite).await
    }

    /// Connects to `url` with sessions the database itself keeps from writing:
    /// SQLite opened `mode=ro`, PostgreSQL sessions with
    /// `default_transaction_read_only` on. What only reads (the status services
    /// through [`StatusReader`]) connects so.
    pub async fn connect_read_only(url: &str, acquire_timeout: Duration) -> Result<Store> {
        Store::connect_as(url, acquire_timeout, Access::ReadOnly).await
    }

    async fn connect_as(url: &str, acquire_timeout: Duration, access: Access) -> Result<Store> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let (backend, url) = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let file = path.split('?').next().unwrap_or(path);
            let mode = match access {
                Access::ReadWrite => "rwc",
                Access::ReadOnly => "ro",
            };
            if file != ":memory:" && access == Access::ReadWrite {
                if let Some(dir) = std::path::Path::new(file)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::new(
                            ErrorKind::Unavailable,
                            format!("cannot create store directory {}: {e}", dir.display()),
                        )
                    })?;
                }
            }
            let url = if path.contains("mode=") && access == Access::ReadWrite {
                format!("sqlite://{path}")
            } else if path.contains("mode=") {
                return Err(Error::malformed(
                    "a read-only store URL sets its own mode; leave `mode=` out",
                ));
            } else if path.contains('?') {
                format!("sqlite://{path}&mode={mode}")
            } else {
                format!("sqlite://{path}?mode={mode}")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let url = match access {
                Access::ReadWrite => url.to_string(),
                Access::ReadOnly => with_pg_option(url, "default_transaction_read_only", "on"),
            };
            (Backend::Postgres, url)
        } else {
            return Err(Error::malformed(format!(
                "store URL `{}` is neither sqlite://PATH nor postgres://…",
                redact_url(url)
            )));
        };
        let options = AnyConnectOptions::from_str(&url).map_err(db_err)?;
        let read_only = access == Access::ReadOnly;
        let pool = pool_options(
            backend,
            if backend == Backend::Sqlite { 4 } else { 8 },
            false,
            read_only,
        )
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|e| db_err(e).context(format!("store {}", redact_url(&url))))?;
        let lanes = match backend {
            // One writer at a time holds a SQLite database's lock.
            Backend::Sqlite => 1,
            Backend::Postgres => writer_lanes(),
        };
        // On PostgreSQL the writer has connections of its own, opened when first
        // used, whose sessions wait at most the busy timeout for a lock held
        // elsewhere (a paused batch, an idle transaction): a group fails
        // Unavailable instead of stalling every write of the process behind it.
        // Set when the connection opens, it costs a group no round trip (a
        // `SET LOCAL` was one statement in five of a group's own). The
        // writer's connections are no longer taken by reads under load either.
        let writer_pool = match backend {
            Backend::Sqlite => pool.clone(),
            Backend::Postgres => {
                // PostgreSQL's lock_timeout is milliseconds in an int, and 0 turns it
                // off: the busy timeout is held to 1 ms ..= i32::MAX here.
                let ms = busy_timeout_ms().clamp(1, i32::MAX as u64);
                let writer_url = with_pg_option(&url, "lock_timeout", &ms.to_string());
                pool_options(backend, lanes as u32 + 1, true, read_only)
                    .acquire_timeout(acquire_timeout)
                    .connect_lazy_with(AnyConnectOptions::from_str(&writer_url).map_err(db_err)?)
            }
        };
        Ok(Store {
            writer: Arc::new(writer::Writer::start(
                writer_pool.clone(),
                lanes,
                match backend {
                    Backend::Sqlite => writer::Runs::OnCaller,
                    Backend::Postgres => writer::Runs::OwnThread,
                },
            )?),
            writer_pool,
            pool,
            backend,
            url,
            active_cas: Arc::default(),
            standing_reads: standing::Reads::default(),
        })
    }

    /// Connects and brings the schema up to date (what services do on start).
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Runs the embedded migrations for this backend.
    pub async fn migrate(&self) -> Result<Vec<String>> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => db_err(inner),
            other => Error::internal(format!("migration: {other}")),
        })?;
        certificates::backfill_official_numbers(self).await?;
        Ok(migrator
            .iter()
            .map(|m| format!("{} {}", m.version, m.description))
            .collect())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL without any password (nor the SQLite open mode gpki adds), for messages.
    pub fn display_url(&self) -> String {
        let url = self
            .url
            .strip_suffix("?mode=rwc")
            .or_else(|| self.url.strip_suffix("&mode=rwc"))
            .unwrap_or(&self.url);
        redact_url(url)
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer_pool.close().await;
    }

    // ---- authorities -------------------------------------------------------

    /// Creates a CA record in state `pending`; its certificate is attached by
    /// [`Store::activate_authority`].
    pub async fn create_authority(
        &self,
        new: &NewAuthority,
        audit: &AuditEvent,
    ) -> Result<AuthorityRecord> {
        let now = gpki_pki::time::now();
        let insert = sqlx::query(
            "INSERT INTO authorities (name, parent_id, status, subject, key_type, signature_algorithm, key_path, \
             crl_url, ocsp_url, ca_issuers_url, created_at, offline) \
             VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(&new.name)
        .bind(new.parent_id)
        .bind(&new.subject)
        .bind(&new.key_type)
        .bind(&new.signature_algorithm)
        .bind(&new.key_path)
        .bind(&new.crl_url)
        .bind(&new.ocsp_url)
        .bind(&new.ca_issuers_url)
        .bind(now)
        .bind(i64::from(new.offline));
        let id: i64 = rows::insert_id(
            &self.pool,
            insert,
            Some(format!("a CA named `{}` exists already", new.name)),
            audit,
            now,
        )
        .await?;
        self.authority(id).await
    }

    /// Attaches the signed certificate to a pending CA and makes it active.
    pub async fn activate_authority(
        &self,
        id: i64,
        key_id: &[u8],
        spki_sha1: &[u8],
        name_sha1: &[u8],
        cert_der: &[u8],
        audit: &AuditEvent,
    ) -> Result<()> {
        // Only a pending CA: an active CA's record never changes (the cache of
        // active CAs and the shared standing reads key on its id).
        let update = sqlx::query(
            "UPDATE authorities SET status = 'active', key_id = $1, spki_sha1 = $2, name_sha1 = $3, cert_der = $4 \
             WHERE id = $5 AND status = 'pending'",
        )
        .bind(key_id)
        .bind(spki_sha1)
        .bind(name_sha1)
        .bind(cert_der)
        .bind(id);
        rows::update_audited(
            &self.pool,
            update,
            Error::conflict(format!(
                "CA {id} is not pending: an active CA's certificate is not replaced"
            )),
            audit,
            gpki_pki::time::now(),
        )
        .await
    }

    const AUTHORITY_COLUMNS: &'static str =
        "id, name, parent_id, status, subject, key_type, signature_algorithm, \
        key_path, key_id, cert_der, crl_url, ocsp_url, ca_issuers_url, created_at, offline";

    fn authority_from_row(row: &AnyRow) -> Result<AuthorityRecord> {
        Ok(rows::record!(
            row,
            AuthorityRecord {
                id,
                name,
                parent_id,
                status,
                subject,
                key_type,
                signature_algorithm,
                key_path,
                offline: rows::flag(row, "offline")?,
                key_id,
                cert_der,
                crl_url,
                ocsp_url,
                ca_issuers_url,
                created_at
            }
        ))
    }

    /// The certificates from authority `id` up to its root (DER, the authority
    /// first, the self-signed root last).
    pub async fn authority_chain(&self, id: i64) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut walk = Some(self.authority(id).await?);
        while let Some(r) = walk {
            out.push(
                r.cert_der.clone().ok_or_else(|| {
                    Error::conflict(format!("CA `{}` has no certificate", r.name))
                })?,
            );
            walk = match r.parent_id {
                Some(p) if p != r.id && out.len() < 16 => Some(self.authority(p).await?),
                _ => None,
            };
        }
        Ok(out)
    }

    pub async fn authority(&self, id: i64) -> Result<AuthorityRecord> {
        if let Some(r) = self.cached_ca(Some(id), None) {
            return Ok(r);
        }
        let sql = format!(
            "SELECT {} FROM authorities WHERE id = $1",
            Self::AUTHORITY_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        match row {
            Some(r) => {
                let r = Self::authority_from_row(&r)?;
                self.remember_ca(&r);
                Ok(r)
            }
            None => Err(Error::not_found(format!("no CA with id {id}"))),
        }
    }

    /// The CA named `name`, or a `NotFound` error that names it.
    pub async fn authority_by_name(&self, name: &str) -> Result<AuthorityRecord> {
        self.find_authority(name)
            .await?
            .ok_or_else(|| Error::not_found(format!("unknown CA `{name}`")))
    }

    pub async fn find_authority(&self, name: &str) -> Result<Option<AuthorityRecord>> {
        if let Some(r) = self.cached_ca(None, Some(name)) {
            return Ok(Some(r));
        }
        let sql = format!(
            "SELECT {} FROM authorities WHERE name = $1",
            Self::AUTHORITY_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        let r = row.as_ref().map(Self::authority_from_row).transpose()?;
        if let Some(r) = &r {
            self.remember_ca(r);
        }
        Ok(r)
    }

    pub async fn authorities(&self) -> Result<Vec<AuthorityRecord>> {
        let sql = format!(
            "SELECT {} FROM authorities ORDER BY id",
            Self::AUTHORITY_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let all = rows
            .iter()
            .map(Self::authority_from_row)
            .collect::<Result<Vec<_>>>()?;
        for r in &all {
            self.remember_ca(r);
        }
        Ok(all)
    }

    /// Row counts of the main tables.
    pub async fn counts(&self) -> Result<Counts> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM authorities) AS a, (SELECT COUNT(*) FROM certificates) AS c, \
             (SELECT COUNT(*) FROM crls) AS r, (SELECT COUNT(*) FROM audit_log) AS l",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(Counts {
            authorities: row.try_get("a").map_err(db_err)?,
            certificates: row.try_get("c").map_err(db_err)?,
            crls: row.try_get("r").map_err(db_err)?,
            audit: row.try_get("l").map_err(db_err)?,
        })
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Hides a password in a URL (`postgres://user:secret@host` → `postgres://user:***@host`).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.split_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// Checks a connection is alive (for `/healthz` and `gpki store migrate`).
pub async fn ping(store: &Store) -> Result<()> {
    let mut conn = store.pool.acquire().await.map_err(db_err)?;
    conn.ping().await.map_err(db_err)?;
    // The writer's own connections (PostgreSQL), once it has opened any: a
    // process that never writes through it opens none for a health check.
    // On the writer's thread, so a connection opened for the ping is the writer's
    // runtime's, like the others.
    if store.backend == Backend::Postgres && store.writer_pool.size() > 0 {
        let pool = store.writer_pool.clone();
        store
            .writer
            .on_home(async move {
                let mut conn = pool.acquire().await.map_err(db_err)?;
                conn.ping().await.map_err(db_err)
            })
            .await?;
    }
    Ok(())
}
