//! An RA's request book: requests as submitted, their identity verification,
//! and every move of their status (a compare-and-set on the row, through the
//! store's group-commit writer).

use std::sync::Arc;

use gpki_pki::{Error, ErrorKind, Result};
use sqlx::any::AnyRow;

use super::{list, unlist};
use crate::audit::append;
use crate::rows::{self, get, record};
use crate::writer::Done;
use crate::{db_err, AuditEvent, Store};

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
    let method: Option<String> = get(row, "method")?;
    let identity = match method {
        Some(_method) => Some(record!(
            row,
            IdentityRecord {
                method,
                document,
                operator_id,
                verified_at
            }
        )),
        None => None,
    };
    request_with(row, identity)
}

/// A request from a row of its own columns ([`REQUEST_ROW`]) and its identity
/// verification.
fn request_with(row: &AnyRow, verified: Option<IdentityRecord>) -> Result<RaRequest> {
    let enrolment = match get::<Option<String>>(row, "enrol_name")? {
        Some(name) => Some(Enrolment {
            name,
            admin: get::<Option<i64>>(row, "enrol_admin")?.unwrap_or(0) != 0,
        }),
        None => None,
    };
    Ok(record!(
        row,
        RaRequest {
            id,
            ra_id,
            idempotency_key,
            body_sha256,
            kind,
            profile,
            subject,
            csr,
            sans: unlist(row, "sans")?,
            target_cert_id,
            reason,
            status,
            submitted_by,
            approved_by,
            decided_by,
            note,
            cert_id,
            created_at,
            updated_at,
            km_transport,
            identity: verified,
            enrol: enrolment
        }
    ))
}
impl Store {
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
        rows::one(self.pool(), sqlx::query(&sql).bind(id), request_from_row)
            .await?
            .ok_or_else(|| Error::not_found(format!("no request {id}")))
    }

    pub async fn request_by_key(&self, ra_id: i64, key: &str) -> Result<Option<RaRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.ra_id = $1 AND r.idempotency_key = $2"
        );
        rows::one(
            self.pool(),
            sqlx::query(&sql).bind(ra_id).bind(key),
            request_from_row,
        )
        .await
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
        rows::all(
            self.pool(),
            sqlx::query(&sql)
                .bind(ra_id)
                .bind(status.unwrap_or(""))
                .bind(limit),
            request_from_row,
        )
        .await
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
