//! Employee numbers: the first official-sign certificate that names one binds it
//! to that official, at recording and (for what was recorded before the binding)
//! once at open.

use gpki_pki::{Error, Result};
use sqlx::Row;

use super::NewCertificate;
use crate::{db_err, Store};

/// The profile of an official's signing certificate, whose subject binds an
/// employee number to one official.
pub const OFFICIAL_PROFILE: &str = "official-sign";

/// An employee number belongs to one official, one name at one institution: the
/// first official-sign certificate that names it binds it (`official_numbers`),
/// and a certificate that claims it for another name or institution is refused.
/// One statement claims or reads the binding, so two certificates recorded at
/// once for one number cannot both bind it. The outer error is the store's; the
/// inner one the refusal.
pub(super) async fn bind_official(
    conn: &mut sqlx::AnyConnection,
    c: &NewCertificate,
    now: i64,
) -> Result<Result<()>> {
    if c.profile != OFFICIAL_PROFILE {
        return Ok(Ok(()));
    }
    let Some(o) = official_of(&c.subject) else {
        return Ok(Ok(()));
    };
    let (name, institution) = claim(&mut *conn, &o, now).await?;
    if name != o.name || institution != o.institution {
        return Ok(Err(Error::policy(format!(
            "employee number {} belongs to {name} of {institution}; a certificate naming it for {} of {} is refused",
            o.employee_number, o.name, o.institution
        ))));
    }
    Ok(Ok(()))
}

/// Binds the employee numbers of the official-sign certificates recorded before
/// migration 0012, once (`official_numbers_backfill` marks how far it got, so a
/// run stopped part way resumes, and a finished one costs one read), in the
/// order they were recorded: the earliest official keeps a number; later claims
/// are left as they are, and counted in the log. Binding is idempotent, so two
/// processes opening the store at once both finish it before they serve.
pub(crate) async fn backfill_official_numbers(store: &Store) -> Result<()> {
    let pool = store.pool();
    // Where it got to (a run stopped part way resumes there), or done (-1).
    let mut after: i64 =
        sqlx::query_scalar("SELECT next_id FROM official_numbers_backfill WHERE id = 1")
            .fetch_one(pool)
            .await
            .map_err(db_err)?;
    if after < 0 {
        return Ok(());
    }
    let (mut conflicts, mut bound) = (0usize, 0usize);
    loop {
        let rows = sqlx::query(
            "SELECT id, subject, created_at FROM certificates WHERE profile = $1 \
             AND status <> 'abandoned' AND id > $2 ORDER BY id LIMIT 1000",
        )
        .bind(OFFICIAL_PROFILE)
        .bind(after)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
        let Some(last) = rows.last() else { break };
        after = last.try_get("id").map_err(db_err)?;
        let mut tx = pool.begin().await.map_err(db_err)?;
        // The mark moves with the page's bindings, in one transaction.
        sqlx::query(
            "UPDATE official_numbers_backfill SET next_id = $1 WHERE id = 1 AND next_id >= 0",
        )
        .bind(after)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        for r in &rows {
            let subject: String = r.try_get("subject").map_err(db_err)?;
            let Some(o) = official_of(&subject) else {
                continue;
            };
            let created_at: i64 = r.try_get("created_at").map_err(db_err)?;
            let (name, institution) = claim(&mut tx, &o, created_at).await?;
            let same = name == o.name && institution == o.institution;
            if same {
                bound += 1;
            } else {
                conflicts += 1;
            }
        }
        tx.commit().await.map_err(db_err)?;
    }
    sqlx::query("UPDATE official_numbers_backfill SET next_id = -1 WHERE id = 1")
        .execute(pool)
        .await
        .map_err(db_err)?;
    if bound + conflicts > 0 {
        tracing::info!(
            bound,
            conflicts,
            "employee numbers bound from the certificates recorded before"
        );
    }
    if conflicts > 0 {
        tracing::warn!(conflicts, "official-sign certificates name an employee number bound to another official: review them (gpki cert list --profile official-sign)");
    }
    Ok(())
}

/// The official a subject (RFC 4514) names, if it names one.
fn official_of(subject: &str) -> Option<gpki_pki::name::Official> {
    gpki_pki::name::parse_rfc4514(subject)
        .ok()
        .and_then(|a| gpki_pki::name::official(&a))
}

/// Binds `o`'s employee number to `o` (at `at`) unless it is bound already; the
/// name and institution it is bound to. One statement claims or reads the binding.
async fn claim(
    conn: &mut sqlx::AnyConnection,
    o: &gpki_pki::name::Official,
    at: i64,
) -> Result<(String, String)> {
    let row = sqlx::query(
        "INSERT INTO official_numbers (employee_number, name, institution, created_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (employee_number) DO UPDATE SET employee_number = official_numbers.employee_number \
         RETURNING name, institution",
    )
    .bind(&o.employee_number)
    .bind(&o.name)
    .bind(&o.institution)
    .bind(at)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok((
        row.try_get("name").map_err(db_err)?,
        row.try_get("institution").map_err(db_err)?,
    ))
}
