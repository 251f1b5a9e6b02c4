//! An RA's operators, known by the certificates they log in with, and the
//! clients of the CA service.

use gpki_pki::{Error, Result};
use sqlx::any::AnyRow;

use super::check_name;
use crate::rows::{self, flag, record};
use crate::{AuditEvent, Store};

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

const OPERATOR_COLUMNS: &str = "id, ra_id, name, cert_id, admin, status, created_at, updated_at";

fn operator_from_row(row: &AnyRow) -> Result<OperatorRecord> {
    Ok(record!(
        row,
        OperatorRecord {
            id,
            ra_id,
            name,
            cert_id,
            admin: flag(row, "admin")?,
            status,
            created_at,
            updated_at
        }
    ))
}
/// An operator's name: 1 to 64 characters of A-Z a-z 0-9 - _ . (it appears in
/// audit labels as `operator:RA/NAME`).
pub fn check_operator_name(name: &str) -> Result<()> {
    check_name("operator", name)
}
impl Store {
    /// Registers certificate `cert_id` as a client of the CA service in `role`.
    pub async fn add_service_client(
        &self,
        name: &str,
        role: &str,
        cert_id: i64,
        audit: &AuditEvent,
    ) -> Result<ServiceClient> {
        let now = gpki_pki::time::now();
        let insert = sqlx::query(
            "INSERT INTO service_clients (name, role, cert_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(cert_id)
        .bind(now);
        let id: i64 = rows::insert_id(self.pool(), insert, None, audit, now).await?;
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
        let query = sqlx::query(
            "SELECT id, name, role, cert_id, created_at FROM service_clients WHERE cert_id = $1",
        )
        .bind(cert_id);
        rows::one(self.pool(), query, |r| {
            Ok(record!(
                r,
                ServiceClient {
                    id,
                    name,
                    role,
                    cert_id,
                    created_at
                }
            ))
        })
        .await
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
        let insert = sqlx::query(
            "INSERT INTO ra_operators (ra_id, name, cert_id, admin, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'active', $5, $5) RETURNING id",
        )
        .bind(ra_id)
        .bind(name)
        .bind(cert_id)
        .bind(admin as i64)
        .bind(now);
        let id: i64 = rows::insert_id(
            self.pool(),
            insert,
            Some("that certificate belongs to an operator already".into()),
            audit,
            now,
        )
        .await?;
        self.operator(id).await
    }

    pub async fn operator(&self, id: i64) -> Result<OperatorRecord> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM ra_operators WHERE id = $1");
        rows::one(self.pool(), sqlx::query(&sql).bind(id), operator_from_row)
            .await?
            .ok_or_else(|| Error::not_found(format!("no operator with id {id}")))
    }

    /// The operator who logs in with certificate `cert_id`, if any.
    pub async fn operator_by_cert(&self, cert_id: i64) -> Result<Option<OperatorRecord>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM ra_operators WHERE cert_id = $1");
        rows::one(
            self.pool(),
            sqlx::query(&sql).bind(cert_id),
            operator_from_row,
        )
        .await
    }

    pub async fn operators(&self, ra_id: i64) -> Result<Vec<OperatorRecord>> {
        let sql =
            format!("SELECT {OPERATOR_COLUMNS} FROM ra_operators WHERE ra_id = $1 ORDER BY id");
        rows::all(
            self.pool(),
            sqlx::query(&sql).bind(ra_id),
            operator_from_row,
        )
        .await
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
        let update = sqlx::query(
            "UPDATE ra_operators SET status = $1, updated_at = $2 WHERE id = $3 AND status <> 'removed'",
        )
        .bind(status)
        .bind(now)
        .bind(id);
        rows::update_audited(
            self.pool(),
            update,
            Error::conflict(format!("operator {id} does not exist or was removed")),
            audit,
            now,
        )
        .await?;
        self.operator(id).await
    }
}
