//! Registration authorities, their operators and requests, and the clients of the
//! CA service. Every change goes in with its audit record, in one transaction;
//! every state move is a compare-and-set on the row's status, so two operators
//! deciding the same request at once cannot both win.

use gpki_pki::{Error, ErrorKind, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::append;
use std::sync::Arc;

use crate::writer::Done;
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

/// A certificate the CA service accepts from a client, and its role.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceClient {
    pub id: i64,
    pub name: String,
    /// `ra`, `ocsp` or `tsa`.
    pub role: String,
    pub cert_id: i64,
    pub created_at: i64,
}

/// An RA operator, known by the certificate it logs in with.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OperatorRecord {
    pub id: i64,
    pub ra_id: i64,
    pub name: String,
    pub cert_id: i64,
    /// May enrol, suspend and remove the RA's operators.
    pub admin: bool,
    /// `active`, `suspended` or `removed`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How an official's identity was verified before approval.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct IdentityRecord {
    /// `face-to-face` or `contact-free`.
    pub method: String,
    /// The document seen: kind and number, as the RA's procedure records it.
    pub document: String,
    pub operator_id: i64,
    pub verified_at: i64,
}

/// A request to an RA.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RaRequest {
    pub id: i64,
    pub ra_id: i64,
    pub idempotency_key: String,
    #[serde(skip)]
    pub body_sha256: String,
    /// `issue`, `renew` or `revoke`.
    pub kind: String,
    pub profile: Option<String>,
    pub subject: Option<String>,
    #[serde(skip)]
    pub csr: Option<Vec<u8>>,
    pub sans: Vec<String>,
    pub target_cert_id: Option<i64>,
    pub reason: Option<i64>,
    /// `submitted`, `approved`, `issued`, `revoked`, `rejected` or `failed`.
    pub status: String,
    /// The operator who submitted it; none for a holder's own revocation.
    pub submitted_by: Option<i64>,
    pub approved_by: Option<i64>,
    pub decided_by: Option<i64>,
    pub note: Option<String>,
    pub cert_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub identity: Option<IdentityRecord>,
    /// An enrolment's operator: name and whether an administrator.
    pub enrol: Option<Enrolment>,
    /// A dual enrolment's transport key (PEM PKCS#10 of the official's one-time
    /// RSA key), to which the CA delivers the km key it makes.
    #[serde(skip)]
    pub km_transport: Option<String>,
}

/// The operator an enrolment request (kind `enrol`) makes once its certificate is
/// issued.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Enrolment {
    pub name: String,
    pub admin: bool,
}

/// A request to record.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub ra_id: i64,
    pub idempotency_key: String,
    pub body_sha256: String,
    pub kind: String,
    pub profile: Option<String>,
    pub subject: Option<String>,
    pub csr: Option<Vec<u8>>,
    pub sans: Vec<String>,
    pub target_cert_id: Option<i64>,
    pub reason: Option<i64>,
    pub submitted_by: Option<i64>,
    pub enrol: Option<Enrolment>,
    /// Recorded approved at once by this operator (one who decides alone), in
    /// the same transaction and audit record as the submission.
    pub approved_by: Option<i64>,
    /// Recorded approved at once with no operator (a holder's signed request).
    pub approved: bool,
    /// A dual enrolment's transport key (PEM PKCS#10).
    pub km_transport: Option<String>,
}

impl NewRequest {
    /// A request of `kind` to RA `ra_id` under `idempotency_key`, whose body
    /// hashes to `body_sha256`, with nothing else: no profile, CSR or target, no
    /// submitter, not approved.
    pub fn new(ra_id: i64, idempotency_key: &str, kind: &str, body_sha256: String) -> NewRequest {
        NewRequest {
            ra_id,
            idempotency_key: idempotency_key.to_string(),
            body_sha256,
            kind: kind.to_string(),
            profile: None,
            subject: None,
            csr: None,
            sans: Vec::new(),
            target_cert_id: None,
            reason: None,
            submitted_by: None,
            enrol: None,
            approved_by: None,
            approved: false,
            km_transport: None,
        }
    }
}

/// A move of a request from one status to another, with what it sets.
#[derive(Debug, Clone, Default)]
pub struct Transition<'a> {
    pub from: &'a [&'a str],
    pub to: &'a str,
    pub approved_by: Option<i64>,
    pub decided_by: Option<i64>,
    pub note: Option<String>,
    /// The certificate the request made, by its CA's id, serial and (for what
    /// the CA issued for it) the CA's request key: the move fails when the store
    /// does not hold that certificate.
    pub certificate: Option<(i64, String, Option<String>)>,
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
    Ok(RaRecord {
        id: row.try_get("id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        ca_name: row.try_get("ca_name").map_err(db_err)?,
        subtrees: unlist(row, "subtrees")?,
        profiles: unlist(row, "profiles")?,
        dual_control: unlist(row, "dual_control")?,
        renew_window_days: row.try_get("renew_window_days").map_err(db_err)?,
        domains: unlist(row, "domains")?,
        host: row.try_get("host").map_err(db_err)?,
        status: row.try_get("status").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

const OPERATOR_COLUMNS: &str = "id, ra_id, name, cert_id, admin, status, created_at, updated_at";

fn operator_from_row(row: &AnyRow) -> Result<OperatorRecord> {
    Ok(OperatorRecord {
        id: row.try_get("id").map_err(db_err)?,
        ra_id: row.try_get("ra_id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        cert_id: row.try_get("cert_id").map_err(db_err)?,
        admin: row.try_get::<i64, _>("admin").map_err(db_err)? != 0,
        status: row.try_get("status").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
    })
}

const REQUEST_COLUMNS: &str = "r.id, r.ra_id, r.idempotency_key, r.body_sha256, r.kind, r.profile, \
     r.subject, r.csr, r.sans, r.target_cert_id, r.reason, r.status, r.submitted_by, r.approved_by, \
     r.decided_by, r.note, r.cert_id, r.created_at, r.updated_at, r.enrol_name, r.enrol_admin, \
     r.km_transport, v.method, v.document, v.operator_id, v.verified_at";

const REQUEST_FROM: &str =
    "ra_requests r LEFT JOIN identity_verifications v ON v.request_id = r.id";

/// The columns of `ra_requests` alone, as an INSERT's RETURNING names them.
const REQUEST_ROW: &str = "id, ra_id, idempotency_key, body_sha256, kind, profile, subject, csr, sans, \
     target_cert_id, reason, status, submitted_by, approved_by, decided_by, note, cert_id, created_at, \
     updated_at, enrol_name, enrol_admin, km_transport";

/// A request selected with [`REQUEST_COLUMNS`] from [`REQUEST_FROM`].
fn request_from_row(row: &AnyRow) -> Result<RaRequest> {
    let method: Option<String> = row.try_get("method").map_err(db_err)?;
    let identity = match method {
        Some(method) => Some(IdentityRecord {
            method,
            document: row.try_get("document").map_err(db_err)?,
            operator_id: row.try_get("operator_id").map_err(db_err)?,
            verified_at: row.try_get("verified_at").map_err(db_err)?,
        }),
        None => None,
    };
    request_with(row, identity)
}

/// A request from a row of its own columns ([`REQUEST_ROW`]) and its identity
/// verification.
fn request_with(row: &AnyRow, identity: Option<IdentityRecord>) -> Result<RaRequest> {
    Ok(RaRequest {
        id: row.try_get("id").map_err(db_err)?,
        ra_id: row.try_get("ra_id").map_err(db_err)?,
        idempotency_key: row.try_get("idempotency_key").map_err(db_err)?,
        body_sha256: row.try_get("body_sha256").map_err(db_err)?,
        kind: row.try_get("kind").map_err(db_err)?,
        profile: row.try_get("profile").map_err(db_err)?,
        subject: row.try_get("subject").map_err(db_err)?,
        csr: row.try_get("csr").map_err(db_err)?,
        sans: unlist(row, "sans")?,
        target_cert_id: row.try_get("target_cert_id").map_err(db_err)?,
        reason: row.try_get("reason").map_err(db_err)?,
        status: row.try_get("status").map_err(db_err)?,
        submitted_by: row.try_get("submitted_by").map_err(db_err)?,
        approved_by: row.try_get("approved_by").map_err(db_err)?,
        decided_by: row.try_get("decided_by").map_err(db_err)?,
        note: row.try_get("note").map_err(db_err)?,
        cert_id: row.try_get("cert_id").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
        km_transport: row.try_get("km_transport").map_err(db_err)?,
        identity,
        enrol: match row
            .try_get::<Option<String>, _>("enrol_name")
            .map_err(db_err)?
        {
            Some(name) => Some(Enrolment {
                name,
                admin: row
                    .try_get::<Option<i64>, _>("enrol_admin")
                    .map_err(db_err)?
                    .unwrap_or(0)
                    != 0,
            }),
            None => None,
        },
    })
}

/// An operator's name: 1 to 64 characters of A-Z a-z 0-9 - _ . (it appears in
/// audit labels as `operator:RA/NAME`).
pub fn check_operator_name(name: &str) -> Result<()> {
    check_name("operator", name)
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
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref()
            .map(ra_from_row)
            .transpose()?
            .ok_or_else(|| Error::not_found(format!("no RA with id {id}")))
    }

    pub async fn ra_by_name(&self, name: &str) -> Result<RaRecord> {
        let sql = format!("SELECT {RA_COLUMNS} FROM ras WHERE name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref()
            .map(ra_from_row)
            .transpose()?
            .ok_or_else(|| Error::not_found(format!("no RA named `{name}`")))
    }

    pub async fn ras(&self) -> Result<Vec<RaRecord>> {
        let sql = format!("SELECT {RA_COLUMNS} FROM ras ORDER BY name");
        let rows = sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter().map(ra_from_row).collect()
    }

    /// Registers certificate `cert_id` as a client of the CA service in `role`.
    pub async fn add_service_client(
        &self,
        name: &str,
        role: &str,
        cert_id: i64,
        audit: &AuditEvent,
    ) -> Result<ServiceClient> {
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let row = sqlx::query(
            "INSERT INTO service_clients (name, role, cert_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(cert_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let id: i64 = row.try_get("id").map_err(db_err)?;
        append(&mut tx, audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(ServiceClient {
            id,
            name: name.to_string(),
            role: role.to_string(),
            cert_id,
            created_at: now,
        })
    }

    /// The service client registered for certificate `cert_id`, if any.
    pub async fn service_client_by_cert(&self, cert_id: i64) -> Result<Option<ServiceClient>> {
        let row = sqlx::query(
            "SELECT id, name, role, cert_id, created_at FROM service_clients WHERE cert_id = $1",
        )
        .bind(cert_id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        row.map(|r| {
            Ok(ServiceClient {
                id: r.try_get("id").map_err(db_err)?,
                name: r.try_get("name").map_err(db_err)?,
                role: r.try_get("role").map_err(db_err)?,
                cert_id: r.try_get("cert_id").map_err(db_err)?,
                created_at: r.try_get("created_at").map_err(db_err)?,
            })
        })
        .transpose()
    }

    /// Enrols the holder of certificate `cert_id` as an operator of RA `ra_id`.
    pub async fn add_operator(
        &self,
        ra_id: i64,
        name: &str,
        cert_id: i64,
        admin: bool,
        audit: &AuditEvent,
    ) -> Result<OperatorRecord> {
        check_operator_name(name)?;
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let row = sqlx::query(
            "INSERT INTO ra_operators (ra_id, name, cert_id, admin, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'active', $5, $5) RETURNING id",
        )
        .bind(ra_id)
        .bind(name)
        .bind(cert_id)
        .bind(admin as i64)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match db_err(e) {
            e if e.kind == ErrorKind::AlreadyExists => Error::new(
                ErrorKind::AlreadyExists,
                "that certificate belongs to an operator already",
            ),
            e => e,
        })?;
        let id: i64 = row.try_get("id").map_err(db_err)?;
        append(&mut tx, audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        self.operator(id).await
    }

    pub async fn operator(&self, id: i64) -> Result<OperatorRecord> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM ra_operators WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref()
            .map(operator_from_row)
            .transpose()?
            .ok_or_else(|| Error::not_found(format!("no operator with id {id}")))
    }

    /// The operator who logs in with certificate `cert_id`, if any.
    pub async fn operator_by_cert(&self, cert_id: i64) -> Result<Option<OperatorRecord>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM ra_operators WHERE cert_id = $1");
        let row = sqlx::query(&sql)
            .bind(cert_id)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref().map(operator_from_row).transpose()
    }

    pub async fn operators(&self, ra_id: i64) -> Result<Vec<OperatorRecord>> {
        let sql =
            format!("SELECT {OPERATOR_COLUMNS} FROM ra_operators WHERE ra_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(ra_id)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter().map(operator_from_row).collect()
    }

    /// Sets an operator's status (`active`, `suspended`, `removed`). A removed
    /// operator stays removed.
    pub async fn set_operator_status(
        &self,
        id: i64,
        status: &str,
        audit: &AuditEvent,
    ) -> Result<OperatorRecord> {
        let now = gpki_pki::time::now();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE ra_operators SET status = $1, updated_at = $2 WHERE id = $3 AND status <> 'removed'",
        )
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() != 1 {
            return Err(Error::conflict(format!(
                "operator {id} does not exist or was removed"
            )));
        }
        append(&mut tx, audit, now).await?;
        tx.commit().await.map_err(db_err)?;
        self.operator(id).await
    }

    /// Records a request, with the identity verification when one is given.
    /// Returns the request and whether it is new: a replay of the same key and
    /// body returns the first request; the same key with another body is refused.
    pub async fn submit_request(
        &self,
        new: &NewRequest,
        identity: Option<&IdentityRecord>,
        audit: &AuditEvent,
    ) -> Result<(RaRequest, bool)> {
        let job = (Arc::new(new.clone()), identity.cloned(), audit.clone());
        let inserted = self
            .writer
            .admit::<Option<RaRequest>>(move |conn| {
                let (new, identity, mut audit) = job.clone();
                Box::pin(async move {
                    // A key recorded before (or earlier in this very group)
                    // inserts nothing: the caller answers it as a replay.
                    let Some(r) = insert_request(conn, &new, identity.as_ref()).await? else {
                        return Ok(Done::new(None::<RaRequest>, Vec::new()));
                    };
                    audit.target = format!("ra-request:{}", r.id);
                    Ok(Done::new(Some(r), vec![audit]))
                })
            })
            .await?;
        match inserted {
            Some(r) => Ok((r, true)),
            None => match self.request_by_key(new.ra_id, &new.idempotency_key).await? {
                Some(existing) => replay(existing, new),
                None => Err(Error::internal(format!(
                    "idempotency key `{}` conflicted with a request the store does not hold",
                    new.idempotency_key
                ))),
            },
        }
    }

    /// Adds the identity verification of a request not yet decided.
    pub async fn verify_identity(
        &self,
        request_id: i64,
        identity: &IdentityRecord,
        audit: &AuditEvent,
    ) -> Result<RaRequest> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        // Claim the row while it is submitted, in the same transaction as the
        // insert: a decision racing this one either comes first (and this fails)
        // or waits for it.
        let claimed = sqlx::query(
            "UPDATE ra_requests SET updated_at = $2 WHERE id = $1 AND status = 'submitted'",
        )
        .bind(request_id)
        .bind(gpki_pki::time::now())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        if claimed != 1 {
            drop(tx);
            let r = self.request(request_id).await?;
            return Err(Error::conflict(format!(
                "request {request_id} is {}; identity is verified before a decision",
                r.status
            )));
        }
        insert_identity(&mut tx, request_id, identity)
            .await
            .map_err(|e| match e.kind {
                ErrorKind::AlreadyExists => Error::conflict(format!(
                    "request {request_id} has its identity verification already"
                )),
                _ => e,
            })?;
        append(&mut tx, audit, gpki_pki::time::now()).await?;
        tx.commit().await.map_err(db_err)?;
        self.request(request_id).await
    }

    pub async fn request(&self, id: i64) -> Result<RaRequest> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref()
            .map(request_from_row)
            .transpose()?
            .ok_or_else(|| Error::not_found(format!("no request {id}")))
    }

    pub async fn request_by_key(&self, ra_id: i64, key: &str) -> Result<Option<RaRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.ra_id = $1 AND r.idempotency_key = $2"
        );
        let row = sqlx::query(&sql)
            .bind(ra_id)
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Requests of RA `ra_id`, newest first, optionally of one status.
    pub async fn requests(
        &self,
        ra_id: i64,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RaRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.ra_id = $1 AND ($2 = '' OR r.status = $2) \
             ORDER BY r.id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(ra_id)
            .bind(status.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter().map(request_from_row).collect()
    }

    /// Moves request `id` from one of `t.from` to `t.to`, or refuses with its
    /// current status when another decision came first.
    pub async fn transition(
        &self,
        r: &RaRequest,
        t: &Transition<'_>,
        audit: &AuditEvent,
    ) -> Result<RaRequest> {
        let id = r.id;
        // An identity verification is only ever added to a submitted request: one
        // read after it left that status has its identity for good, and a move
        // that cannot start from it need not read the identity back.
        let identity =
            (r.status != "submitted" && !t.from.contains(&"submitted")).then(|| r.identity.clone());
        debug_assert!(t
            .from
            .iter()
            .all(|s| s.chars().all(|c| c.is_ascii_lowercase())));
        let from: Vec<String> = t.from.iter().map(|s| format!("'{s}'")).collect();
        let sql = Arc::new(format!(
            "UPDATE ra_requests SET status = $1, updated_at = $2, \
             approved_by = COALESCE($3, approved_by), decided_by = COALESCE($4, decided_by), \
             note = COALESCE($5, note), \
             cert_id = COALESCE((SELECT id FROM certificates WHERE issuer_id = $6 AND serial = $8 \
             AND ($9 = '' OR request_key = $9)), cert_id) \
             WHERE id = $7 AND status IN ({}) \
             AND ($6 IS NULL OR EXISTS (SELECT 1 FROM certificates WHERE issuer_id = $6 AND serial = $8 \
             AND ($9 = '' OR request_key = $9))) \
             RETURNING {REQUEST_ROW}",
            from.join(", ")
        ));
        let to = t.to.to_string();
        let movable: Arc<Vec<String>> = Arc::new(t.from.iter().map(|s| s.to_string()).collect());
        let (approved_by, decided_by) = (t.approved_by, t.decided_by);
        let (issuer_id, serial, request_key) = match &t.certificate {
            Some((issuer, serial, key)) => (
                Some(*issuer),
                serial.clone(),
                key.clone().unwrap_or_default(),
            ),
            None => (None, String::new(), String::new()),
        };
        let note = t.note.clone();
        let audit = audit.clone();
        self.writer
            .write::<RaRequest>(move |conn| {
                let (sql, to, note, audit) = (sql.clone(), to.clone(), note.clone(), audit.clone());
                let (serial, request_key, movable, identity) = (
                    serial.clone(),
                    request_key.clone(),
                    movable.clone(),
                    identity.clone(),
                );
                Box::pin(async move {
                    let moved = sqlx::query(&sql)
                        .bind(&to)
                        .bind(gpki_pki::time::now())
                        .bind(approved_by)
                        .bind(decided_by)
                        .bind(&note)
                        .bind(issuer_id)
                        .bind(id)
                        .bind(&serial)
                        .bind(&request_key)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(db_err)?;
                    match (moved, identity) {
                        (Some(row), Some(identity)) => {
                            return Ok(Done::new(request_with(&row, identity)?, vec![audit]));
                        }
                        (Some(_), None) => {
                            // Read back in the group's transaction, with the
                            // identity as it now stands.
                            let sql = format!(
                                "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.id = $1"
                            );
                            let row = sqlx::query(&sql)
                                .bind(id)
                                .fetch_one(&mut *conn)
                                .await
                                .map_err(db_err)?;
                            return Ok(Done::new(request_from_row(&row)?, vec![audit]));
                        }
                        (None, _) => {}
                    }
                    let current: Option<String> =
                        sqlx::query_scalar("SELECT status FROM ra_requests WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&mut *conn)
                            .await
                            .map_err(db_err)?;
                    Err(match current {
                        // In a status to move from: the certificate is what is missing.
                        Some(s) if issuer_id.is_some() && movable.contains(&s) => Error::internal(
                            format!("the CA answered serial {serial}, which the store does not hold as this request's"),
                        ),
                        Some(s) => {
                            Error::conflict(format!("request {id} is {s}; it cannot become {to}"))
                        }
                        None => Error::not_found(format!("no request {id}")),
                    })
                })
            })
            .await
    }
}

/// Records `new` with its identity verification, if any; None when its
/// idempotency key is recorded already (nothing is written then). On
/// PostgreSQL both rows go in one statement, so a submission costs the
/// writer's group one round trip.
async fn insert_request(
    conn: &mut sqlx::AnyConnection,
    new: &NewRequest,
    identity: Option<&IdentityRecord>,
) -> Result<Option<RaRequest>> {
    let postgres = conn.backend_name().eq_ignore_ascii_case("postgresql");
    let insert = "INSERT INTO ra_requests (ra_id, idempotency_key, body_sha256, kind, profile, subject, csr, sans, \
         target_cert_id, reason, status, submitted_by, created_at, updated_at, enrol_name, enrol_admin, approved_by, \
         km_transport) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $15, $11, $12, $12, $13, $14, $16, $17) \
         ON CONFLICT (ra_id, idempotency_key) DO NOTHING";
    let sql = match (postgres, identity) {
        (true, Some(_)) => format!(
            "WITH r AS ({insert} RETURNING {REQUEST_ROW}), \
             v AS (INSERT INTO identity_verifications (request_id, method, document, operator_id, verified_at) \
                   SELECT id, $18, $19, $20, $21 FROM r) \
             SELECT * FROM r"
        ),
        _ => format!("{insert} RETURNING {REQUEST_ROW}"),
    };
    let mut q = sqlx::query(&sql)
        .bind(new.ra_id)
        .bind(&new.idempotency_key)
        .bind(&new.body_sha256)
        .bind(&new.kind)
        .bind(&new.profile)
        .bind(&new.subject)
        .bind(&new.csr)
        .bind(list(&new.sans))
        .bind(new.target_cert_id)
        .bind(new.reason)
        .bind(new.submitted_by)
        .bind(gpki_pki::time::now())
        .bind(new.enrol.as_ref().map(|e| e.name.clone()))
        .bind(new.enrol.as_ref().map(|e| i64::from(e.admin)))
        .bind(if new.approved || new.approved_by.is_some() {
            "approved"
        } else {
            "submitted"
        })
        .bind(new.approved_by)
        .bind(&new.km_transport);
    if let (true, Some(v)) = (postgres, identity) {
        q = q
            .bind(&v.method)
            .bind(&v.document)
            .bind(v.operator_id)
            .bind(v.verified_at);
    }
    let Some(row) = q.fetch_optional(&mut *conn).await.map_err(db_err)? else {
        return Ok(None);
    };
    let r = request_with(&row, identity.cloned())?;
    if let (false, Some(v)) = (postgres, identity) {
        insert_identity(conn, r.id, v).await?;
    }
    Ok(Some(r))
}

fn replay(existing: RaRequest, new: &NewRequest) -> Result<(RaRequest, bool)> {
    if existing.body_sha256 != new.body_sha256 {
        return Err(Error::conflict(format!(
            "idempotency key `{}` was used for a different request ({})",
            new.idempotency_key, existing.id
        )));
    }
    Ok((existing, false))
}

async fn insert_identity(
    conn: &mut sqlx::AnyConnection,
    request_id: i64,
    v: &IdentityRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO identity_verifications (request_id, method, document, operator_id, verified_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(request_id)
    .bind(&v.method)
    .bind(&v.document)
    .bind(v.operator_id)
    .bind(v.verified_at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
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
        let Some((store, url)) = crate::test_support::pg_store().await else {
            return;
        };
        an_ra_of_an_offline_ca_is_refused(&store).await;
        store.close().await;
        crate::test_support::drop_pg(&url).await;
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
