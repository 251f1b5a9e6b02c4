//! Registration authorities: their records, scope and standing. Their operators
//! and the clients of the CA service are in `operators`, their requests in
//! `requests`. Every change goes in with its audit record, in one transaction;
//! every state move is a compare-and-set on the row's status, so two operators
//! deciding the same request at once cannot both win.

mod operators;
mod requests;

pub use operators::{check_operator_name, OperatorRecord, ServiceClient};
pub use requests::{Enrolment, IdentityRecord, NewRequest, RaRequest, Transition};

use gpki_pki::{Error, ErrorKind, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::append;
use crate::rows::{self, record};
use crate::{db_err, AuditEvent, Store};

/// A registration authority.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RaRecord {
    pub id: i64,
    pub name: String,
    /// The CA it asks for certificates.
    pub ca_name: String,
    /// RFC 4514 DNs; a subject must fall under one of them.
    pub subtrees: Vec<String>,
    /// Profiles it may ask for.
    pub profiles: Vec<String>,
    /// Profiles whose requests need a second operator's approval.
    pub dual_control: Vec<String>,
    /// Renewal is allowed this many days before expiry, not earlier.
    pub renew_window_days: i64,
    /// DNS domains every DNS and e-mail SAN it asks for falls under.
    pub domains: Vec<String>,
    /// The service client (role `ra`) that acts for it at the CA.
    pub host: String,
    /// `active` or `suspended`.
    pub status: String,
    pub created_at: i64,
}

/// An RA to create.
#[derive(Debug, Clone)]
pub struct NewRa {
    pub name: String,
    pub ca_name: String,
    pub subtrees: Vec<String>,
    pub profiles: Vec<String>,
    pub dual_control: Vec<String>,
    pub renew_window_days: i64,
    pub host: String,
    pub domains: Vec<String>,
}

/// A change to an RA's scope or standing: each field given replaces the RA's.
/// Its name and CA stay (requests and replays are keyed by them); an RA moving
/// to another CA is a new RA.
#[derive(Debug, Clone, Default)]
pub struct RaChange {
    pub subtrees: Option<Vec<String>>,
    pub profiles: Option<Vec<String>>,
    pub dual_control: Option<Vec<String>>,
    pub renew_window_days: Option<i64>,
    pub domains: Option<Vec<String>>,
    pub host: Option<String>,
    /// `active` or `suspended`.
    pub status: Option<String>,
}

fn list(v: &[String]) -> String {
    serde_json::to_string(v).expect("JSON of strings")
}

fn unlist(row: &AnyRow, col: &str) -> Result<Vec<String>> {
    let text: String = row.try_get(col).map_err(db_err)?;
    serde_json::from_str(&text).map_err(|e| Error::internal(format!("store: {col}: {e}")))
}

const RA_COLUMNS: &str = "id, name, ca_name, subtrees, profiles, dual_control, renew_window_days, domains, host, status, created_at";

fn ra_from_row(row: &AnyRow) -> Result<RaRecord> {
    Ok(record!(
        row,
        RaRecord {
            id,
            name,
            ca_name,
            subtrees: unlist(row, "subtrees")?,
            profiles: unlist(row, "profiles")?,
            dual_control: unlist(row, "dual_control")?,
            renew_window_days,
            domains: unlist(row, "domains")?,
            host,
            status,
            created_at
        }
    ))
}

/// A name the store keys records by (RAs, operators, KRAs, officers): 1 to 64
/// characters of A-Z a-z 0-9 - _ . (no `:` or `/`, which audit labels and replay
/// keys use as separators).
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Error::malformed(format!(
            "{what} name `{name}`: 1 to 64 characters of A-Z a-z 0-9 - _ ."
        )));
    }
    Ok(())
}

/// An RA's domain: a DNS name of at least two labels (`mois.go.kr`), lower case
/// letters, digits and hyphens; no wildcard.
fn check_domain(d: &str) -> Result<()> {
    let labels: Vec<&str> = d.split('.').collect();
    let ok = d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if !ok {
        return Err(Error::malformed(format!(
            "RA domain `{d}`: a lower-case DNS name of two or more labels, no wildcard"
        )));
    }
    Ok(())
}

/// The longest renewal window an RA may keep open before expiry, in days.
const RENEW_WINDOW_MAX_DAYS: i64 = 3650;

/// The checks an RA's scope passes, at creation and at every change: a DNS
/// domain list of names, a renewal window of 1 to [`RENEW_WINDOW_MAX_DAYS`] days
/// (0 would open it only at expiry, when an expired certificate renews on no route),
/// dual control only on profiles the RA may ask for, and no list naming an entry
/// twice.
fn check_scope(
    profiles: &[String],
    dual_control: &[String],
    subtrees: &[String],
    domains: &[String],
    renew_window_days: i64,
) -> Result<()> {
    for d in domains {
        check_domain(d)?;
    }
    if !(1..=RENEW_WINDOW_MAX_DAYS).contains(&renew_window_days) {
        return Err(Error::malformed(format!(
            "renew_window_days {renew_window_days}: 1 to {RENEW_WINDOW_MAX_DAYS} (a window of 0 would open only once the certificate has expired)"
        )));
    }
    if let Some(p) = dual_control.iter().find(|p| !profiles.contains(p)) {
        return Err(Error::malformed(format!(
            "dual control on `{p}`, which is not one of the RA's profiles ({})",
            profiles.join(",")
        )));
    }
    for (what, list) in [
        ("profiles", profiles),
        ("dual control", dual_control),
        ("subtrees", subtrees),
        ("domains", domains),
    ] {
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = list.iter().find(|e| !seen.insert(*e)) {
            return Err(Error::malformed(format!("{what} name `{twice}` twice")));
        }
    }
    Ok(())
}

/// `new`, when given, into `slot`, noting in `changed` the field's value from and
/// to when it differs.
fn apply<T: Clone + serde::Serialize>(
    changed: &mut serde_json::Map<String, serde_json::Value>,
    field: &str,
    new: &Option<T>,
    slot: &mut T,
) {
    if let Some(v) = new {
        let (from, to) = (serde_json::json!(slot), serde_json::json!(v));
        if from != to {
            changed.insert(field.into(), serde_json::json!({ "from": from, "to": to }));
        }
        *slot = v.clone();
    }
}

/// Binds an RA's scope and standing, in the columns' order: subtrees, profiles,
/// dual_control, renew_window_days, domains, host, status.
fn bind_ra<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    r: &RaRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(list(&r.subtrees))
        .bind(list(&r.profiles))
        .bind(list(&r.dual_control))
        .bind(r.renew_window_days)
        .bind(list(&r.domains))
        .bind(r.host.clone())
        .bind(r.status.clone())
}

/// Writes `after` over the RA row only if it still holds `before`: an update
/// made meanwhile by another administrator (PostgreSQL reads committed rows
/// without locking them) makes this one write nothing, instead of writing over
/// it with what was read. False when nothing was written.
async fn write_ra_change(
    conn: &mut sqlx::AnyConnection,
    before: &RaRecord,
    after: &RaRecord,
) -> Result<bool> {
    let query = sqlx::query(
        "UPDATE ras SET subtrees = $1, profiles = $2, dual_control = $3, renew_window_days = $4, \
         domains = $5, host = $6, status = $7 WHERE id = $15 AND subtrees = $8 AND profiles = $9 \
         AND dual_control = $10 AND renew_window_days = $11 AND domains = $12 AND host = $13 AND status = $14",
    );
    let updated = bind_ra(bind_ra(query, after), before)
        .bind(before.id)
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(updated.rows_affected() == 1)
}
impl Store {
    /// Creates an RA.
    pub async fn create_ra(&self, new: &NewRa, audit: &AuditEvent) -> Result<RaRecord> {
        // The CA service keys replays by `ra:NAME:ID`; a name without `:` keeps
        // two RAs' keys apart.
        check_name("RA", &new.name)?;
        check_scope(
            &new.profiles,
            &new.dual_control,
            &new.subtrees,
            &new.domains,
            new.renew_window_days,
        )?;
        // An RA asks the online CA service, which never acts for an offline CA
        // (a root): an RA of one could only be a way around that.
        if self
            .find_authority(&new.ca_name)
            .await?
            .is_some_and(|a| a.offline)
        {
            return Err(Error::policy(format!(
                "CA `{}` is offline: an RA asks an online CA (the online CA service never acts for an offline one)",
                new.ca_name
            )));
        }
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let row = sqlx::query(
            "INSERT INTO ras (name, ca_name, subtrees, profiles, dual_control, renew_window_days, host, status, created_at, domains) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9) RETURNING id",
        )
        .bind(&new.name)
        .bind(&new.ca_name)
        .bind(list(&new.subtrees))
        .bind(list(&new.profiles))
        .bind(list(&new.dual_control))
        .bind(new.renew_window_days)
        .bind(&new.host)
        .bind(now)
        .bind(list(&new.domains))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match db_err(e) {
            e if e.kind == ErrorKind::AlreadyExists => Error::new(
                ErrorKind::AlreadyExists,
                format!("an RA named `{}` exists already", new.name),
            ),
            e => e,
        })?;
        let id: i64 = row.try_get("id").map_err(db_err)?;
        append(&mut tx, audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        self.ra(id).await
    }

    /// Changes RA `name` as `change` says, in one transaction with its audit
    /// record (`ra.update`, each changed field from and to). Both services trust
    /// an RA's record for at most a second (`auth_cache_ms`) before reading it again.
    /// Nothing given, or nothing different: refused, nothing written.
    pub async fn update_ra(
        &self,
        name: &str,
        change: &RaChange,
        audit: &AuditEvent,
    ) -> Result<RaRecord> {
        if change.subtrees.as_ref().is_some_and(|s| s.is_empty())
            || change.profiles.as_ref().is_some_and(|p| p.is_empty())
        {
            return Err(Error::malformed(
                "an RA keeps at least one subtree and one profile (suspend it to stop it)",
            ));
        }
        if change.host.as_ref().is_some_and(|h| h.is_empty()) {
            return Err(Error::malformed("an RA's host is a service client's name"));
        }
        if let Some(s) = &change.status {
            if s != "active" && s != "suspended" {
                return Err(Error::malformed(format!(
                    "RA status `{s}`: active or suspended"
                )));
            }
        }
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let sql = format!("SELECT {RA_COLUMNS} FROM ras WHERE name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let before = row
            .as_ref()
            .map(ra_from_row)
            .transpose()?
            .ok_or_else(|| Error::not_found(format!("no RA named `{name}`")))?;
        let mut after = before.clone();
        let mut changed = serde_json::Map::new();
        apply(
            &mut changed,
            "subtrees",
            &change.subtrees,
            &mut after.subtrees,
        );
        apply(
            &mut changed,
            "profiles",
            &change.profiles,
            &mut after.profiles,
        );
        apply(
            &mut changed,
            "dual_control",
            &change.dual_control,
            &mut after.dual_control,
        );
        apply(
            &mut changed,
            "renew_window_days",
            &change.renew_window_days,
            &mut after.renew_window_days,
        );
        apply(&mut changed, "domains", &change.domains, &mut after.domains);
        apply(&mut changed, "host", &change.host, &mut after.host);
        apply(&mut changed, "status", &change.status, &mut after.status);
        if changed.is_empty() {
            return Err(Error::conflict(format!(
                "RA `{name}` is already as asked; nothing changed"
            )));
        }
        // A change of standing or host alone is never held up by a scope that
        // older versions let through (suspending is the emergency stop); a change
        // of the scope leaves one that passes.
        let scope = change.subtrees.is_some()
            || change.profiles.is_some()
            || change.dual_control.is_some()
            || change.renew_window_days.is_some()
            || change.domains.is_some();
        if scope {
            check_scope(
                &after.profiles,
                &after.dual_control,
                &after.subtrees,
                &after.domains,
                after.renew_window_days,
            )?;
        }
        if !write_ra_change(&mut tx, &before, &after).await? {
            return Err(Error::conflict(format!(
                "RA `{name}` was changed by someone else meanwhile; nothing changed, read it again"
            )));
        }
        let mut audit = audit.clone();
        audit.detail = serde_json::Value::Object(changed);
        append(&mut tx, &audit, gpki_pki::time::now()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(after)
    }

    pub async fn ra(&self, id: i64) -> Result<RaRecord> {
        let sql = format!("SELECT {RA_COLUMNS} FROM ras WHERE id = $1");
        rows::one(self.pool(), sqlx::query(&sql).bind(id), ra_from_row)
            .await?
            .ok_or_else(|| Error::not_found(format!("no RA with id {id}")))
    }

    pub async fn ra_by_name(&self, name: &str) -> Result<RaRecord> {
        let sql = format!("SELECT {RA_COLUMNS} FROM ras WHERE name = $1");
        rows::one(self.pool(), sqlx::query(&sql).bind(name), ra_from_row)
            .await?
            .ok_or_else(|| Error::not_found(format!("no RA named `{name}`")))
    }

    pub async fn ras(&self) -> Result<Vec<RaRecord>> {
        let sql = format!("SELECT {RA_COLUMNS} FROM ras ORDER BY name");
        rows::all(self.pool(), sqlx::query(&sql), ra_from_row).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{event, store};

    #[test]
    fn names_the_store_keys_by_are_checked_alike() {
        for ok in ["dev-mois", "a", "A_b.c", &"x".repeat(64)] {
            check_name("RA", ok).unwrap();
        }
        for bad in ["", "a:b", "a/b", "a b", "한글", &"x".repeat(65)] {
            let e = check_name("KRA", bad).unwrap_err();
            assert_eq!(e.kind, gpki_pki::ErrorKind::Malformed);
            assert!(e.detail.starts_with("KRA name `"), "{e}");
            assert!(check_operator_name(bad).is_err(), "{bad}");
        }
    }

    fn new_ra() -> NewRa {
        NewRa {
            name: "A".into(),
            ca_name: "ca".into(),
            subtrees: vec!["O=A, C=KR".into()],
            profiles: vec!["official-sign".into(), "official-km".into()],
            dual_control: vec!["official-sign".into()],
            renew_window_days: 30,
            host: "ra-host-1".into(),
            domains: vec![],
        }
    }

    /// An RA is of an online CA: one naming an offline CA (a root) is refused and
    /// nothing is written; the online CA beside it takes one.
    #[tokio::test]
    async fn an_ra_of_an_offline_ca_is_refused_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        an_ra_of_an_offline_ca_is_refused(&store(&dir).await).await;
    }

    #[tokio::test]
    async fn an_ra_of_an_offline_ca_is_refused_on_postgres() {
        crate::test_support::on_postgres(|store| async move {
            an_ra_of_an_offline_ca_is_refused(&store).await
        })
        .await;
    }

    async fn an_ra_of_an_offline_ca_is_refused(store: &Store) {
        for (name, offline) in [("root", true), ("ca", false)] {
            store
                .create_authority(
                    &crate::NewAuthority {
                        name: name.into(),
                        parent_id: None,
                        subject: format!("CN={name}"),
                        key_type: "p256".into(),
                        signature_algorithm: "ecdsa-with-SHA256".into(),
                        key_path: format!("{name}.key.pem"),
                        offline,
                        crl_url: None,
                        ocsp_url: None,
                        ca_issuers_url: None,
                    },
                    &event(),
                )
                .await
                .unwrap();
        }
        assert!(store.authority_by_name("root").await.unwrap().offline);
        let e = store
            .create_ra(
                &NewRa {
                    ca_name: "root".into(),
                    ..new_ra()
                },
                &event(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::PolicyViolation, "{e}");
        assert!(e.detail.contains("CA `root` is offline"), "{e}");
        assert!(store.ras().await.unwrap().is_empty());
        store.create_ra(&new_ra(), &event()).await.unwrap();
    }

    /// A change is written only over the row it read: one made on a stale read
    /// (another administrator's update committed meanwhile) writes nothing and
    /// the other's change stands.
    #[tokio::test]
    async fn an_ra_change_on_a_stale_read_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let stale = store.create_ra(&new_ra(), &event()).await.unwrap();
        let theirs = RaChange {
            renew_window_days: Some(60),
            ..Default::default()
        };
        store.update_ra("A", &theirs, &event()).await.unwrap();
        let mut mine = stale.clone();
        mine.status = "suspended".into();
        let mut conn = store.pool().acquire().await.unwrap();
        assert!(!write_ra_change(&mut conn, &stale, &mine).await.unwrap());
        let now = store.ra_by_name("A").await.unwrap();
        assert_eq!((now.renew_window_days, now.status.as_str()), (60, "active"));
        // On a fresh read it is written.
        mine = now.clone();
        mine.status = "suspended".into();
        assert!(write_ra_change(&mut conn, &now, &mine).await.unwrap());
        assert_eq!(store.ra_by_name("A").await.unwrap().status, "suspended");
    }

    /// The scope an update leaves is checked as at creation, and nothing to
    /// change is refused; neither writes anything.
    #[tokio::test]
    async fn an_ra_update_is_checked_like_a_creation() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        store.create_ra(&new_ra(), &event()).await.unwrap();
        let refused = |change: RaChange, why: &'static str| {
            let store = store.clone();
            async move {
                let e = store.update_ra("A", &change, &event()).await.unwrap_err();
                assert!(e.detail.contains(why), "{e}");
            }
        };
        // official-sign is under dual control: dropping it from the profiles
        // alone would leave dual control on a profile the RA cannot ask for.
        refused(
            RaChange {
                profiles: Some(vec!["official-km".into()]),
                ..Default::default()
            },
            "not one of the RA's profiles",
        )
        .await;
        refused(
            RaChange {
                renew_window_days: Some(100_000),
                ..Default::default()
            },
            "1 to 3650",
        )
        .await;
        refused(
            RaChange {
                renew_window_days: Some(0),
                ..Default::default()
            },
            "1 to 3650",
        )
        .await;
        refused(
            RaChange {
                profiles: Some(vec!["official-km".into(), "official-km".into()]),
                dual_control: Some(vec![]),
                ..Default::default()
            },
            "twice",
        )
        .await;
        refused(
            RaChange {
                status: Some("active".into()),
                ..Default::default()
            },
            "already as asked",
        )
        .await;
        let ra = store.ra_by_name("A").await.unwrap();
        assert_eq!(ra.profiles, ["official-sign", "official-km"]);
        assert_eq!(ra.renew_window_days, 30);
        // A scope older versions let through does not hold up a suspension.
        sqlx::query("UPDATE ras SET renew_window_days = 99999")
            .execute(store.pool())
            .await
            .unwrap();
        let suspend = RaChange {
            status: Some("suspended".into()),
            ..Default::default()
        };
        let ra = store.update_ra("A", &suspend, &event()).await.unwrap();
        assert_eq!(ra.status, "suspended");
    }
}
