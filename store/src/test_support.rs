//! Fixtures of the store's unit tests.

use crate::{AuditEvent, AuthorityRecord, NewAuthority, Store};

pub(crate) fn event() -> AuditEvent {
    AuditEvent::new("test", "test", "test", serde_json::json!({}))
}

/// A SQLite store in `dir`.
pub(crate) async fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(&format!("sqlite://{}/gpki.db", dir.path().display()))
        .await
        .unwrap()
}

/// A pending root CA named `ca`, with no certificate yet.
pub(crate) async fn ca(store: &Store) -> AuthorityRecord {
    store
        .create_authority(
            &NewAuthority {
                name: "ca".into(),
                parent_id: None,
                subject: "CN=ca".into(),
                key_type: "p256".into(),
                signature_algorithm: "ecdsa-with-SHA256".into(),
                key_path: "ca.key.pem".into(),
                offline: false,
                crl_url: None,
                ocsp_url: None,
                ca_issuers_url: None,
            },
            &event(),
        )
        .await
        .unwrap()
}

/// A store on a fresh database of the PostgreSQL server `GPKI_TEST_POSTGRES_URL`
/// names, with that database's URL; None (the test is skipped) when it is
/// unset, which CI refuses.
pub(crate) async fn pg_store() -> Option<(Store, String)> {
    let admin = match std::env::var("GPKI_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false"),
                "GPKI_TEST_POSTGRES_URL is not set, and CI is set: the PostgreSQL tests must run"
            );
            eprintln!("skipping PostgreSQL test: GPKI_TEST_POSTGRES_URL is not set");
            return None;
        }
    };
    sqlx::any::install_default_drivers();
    let db = format!("gpki_u_{}", hex::encode(rand_bytes()));
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {db}").as_str())
        .await
        .unwrap();
    let url = with_database(&admin, &db);
    Some((Store::open(&url).await.unwrap(), url))
}

/// `url` naming database `db` instead (its query, if any, kept).
fn with_database(url: &str, db: &str) -> String {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, format!("?{q}")),
        None => (url, String::new()),
    };
    let (base, _) = path.rsplit_once('/').expect("postgres URL has a database");
    format!("{base}/{db}{query}")
}

/// Drops the database of `url`, made by [`pg_store`] (its store closed first).
pub(crate) async fn drop_pg(url: &str) {
    let admin = std::env::var("GPKI_TEST_POSTGRES_URL").expect("set for a PostgreSQL test");
    let db = url.split('?').next().unwrap().rsplit('/').next().unwrap();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::Executor::execute(
        &mut conn,
        format!("DROP DATABASE {db} WITH (FORCE)").as_str(),
    )
    .await
    .unwrap();
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    openssl::rand::rand_bytes(&mut b).unwrap();
    b
}

/// Runs `check` on a fresh PostgreSQL store, then closes and drops it; nothing
/// runs when no PostgreSQL is configured.
pub(crate) async fn on_postgres<F, Fut>(check: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some((store, url)) = pg_store().await else {
        return;
    };
    check(store.clone()).await;
    store.close().await;
    drop_pg(&url).await;
}

/// Two tests, `$sqlite` and `$postgres`, that run `$check(&Store)` on a fresh
/// store of each backend.
macro_rules! on_both_backends {
    ($sqlite:ident, $postgres:ident, $check:path) => {
        #[tokio::test]
        async fn $sqlite() {
            let dir = tempfile::tempdir().unwrap();
            $check(&crate::test_support::store(&dir).await).await;
        }

        #[tokio::test]
        async fn $postgres() {
            crate::test_support::on_postgres(|store| async move { $check(&store).await }).await;
        }
    };
}
pub(crate) use on_both_backends;
