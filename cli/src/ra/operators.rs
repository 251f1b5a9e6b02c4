//! `gpki ra operator enrol | list | suspend | activate | remove` and `gpki ra
//! whoami`: the RA's operators, through the RA service.

use std::path::PathBuf;

use clap::Args;
use gpki_pki::Result;
use serde_json::{json, Value};

use super::requests::save_certificate;
use super::Conn;
use crate::{emit, read_file, Global};

/// The arguments of `gpki ra operator enrol`.
#[derive(Args)]
pub struct OperatorEnrolArgs {
    #[command(flatten)]
    conn: Conn,
    #[arg(long)]
    idempotency_key: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    subject: String,
    #[arg(long)]
    csr: PathBuf,
    #[arg(long)]
    admin: bool,
    /// Write the certificate, then its CA chain (ready for --cert), here
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Enrol an operator through the RA service (administrators)
pub(super) async fn enrol(g: &Global, args: OperatorEnrolArgs) -> Result<()> {
    let OperatorEnrolArgs {
        conn,
        idempotency_key,
        name,
        subject,
        csr,
        admin,
        out: file,
    } = args;
    let out = g.output;
    let body = json!({
        "idempotency_key": idempotency_key, "name": name, "subject": subject,
        "csr": String::from_utf8_lossy(&read_file(&csr, "CSR")?), "admin": admin,
    });
    let v: Value = conn.client()?.post("v1/operators", &body).await?;
    let saved = save_certificate(&v, file.as_ref(), true)?;
    emit(out, v.clone(), || {
        let mut t = format!(
            "operator {} enrolled (id {})",
            v["operator"]["name"].as_str().unwrap_or(""),
            v["operator"]["id"]
        );
        if let Some(s) = saved {
            t += &format!("\n  certificate written to {s}");
        }
        t
    });
    Ok(())
}

/// The arguments of `gpki ra operator list`.
#[derive(Args)]
pub struct OperatorListArgs {
    #[command(flatten)]
    conn: Conn,
}

/// The RA's operators
pub(super) async fn list(g: &Global, args: OperatorListArgs) -> Result<()> {
    let OperatorListArgs { conn } = args;
    let out = g.output;
    let v: Value = conn.client()?.get("v1/operators").await?;
    emit(out, v.clone(), || {
        v["operators"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                format!(
                    "{}\t{}\t{}{}",
                    o["id"],
                    o["name"].as_str().unwrap_or(""),
                    o["status"].as_str().unwrap_or(""),
                    if o["admin"].as_bool() == Some(true) {
                        "\tadmin"
                    } else {
                        ""
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// The arguments of `gpki ra operator suspend`, `activate` and `remove`: which
/// operator.
#[derive(Args)]
pub struct OperatorIdArgs {
    #[command(flatten)]
    conn: Conn,
    id: i64,
}

/// Suspend an operator
pub(super) async fn suspend(g: &Global, args: OperatorIdArgs) -> Result<()> {
    operator_verb(g.output, &args.conn, args.id, "suspend").await
}

/// Lift a suspension
pub(super) async fn activate(g: &Global, args: OperatorIdArgs) -> Result<()> {
    operator_verb(g.output, &args.conn, args.id, "activate").await
}

/// Remove an operator for good
pub(super) async fn remove(g: &Global, args: OperatorIdArgs) -> Result<()> {
    operator_verb(g.output, &args.conn, args.id, "remove").await
}

/// The arguments of `gpki ra whoami`.
#[derive(Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    conn: Conn,
}

/// Who the RA service takes this operator certificate for: operator and RA
pub(super) async fn whoami(g: &Global, args: WhoamiArgs) -> Result<()> {
    let WhoamiArgs { conn } = args;
    let out = g.output;
    let v: Value = conn.client()?.get("v1/whoami").await?;
    emit(out, v.clone(), || {
        format!(
            "operator {} (id {}{}) of RA {} (CA {}, profiles {})",
            v["operator"]["name"].as_str().unwrap_or(""),
            v["operator"]["id"],
            if v["operator"]["admin"] == true {
                ", administrator"
            } else {
                ""
            },
            v["ra"]["name"].as_str().unwrap_or(""),
            v["ra"]["ca_name"].as_str().unwrap_or(""),
            v["ra"]["profiles"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(","))
                .unwrap_or_default(),
        )
    });
    Ok(())
}

async fn operator_verb(out: crate::Output, conn: &Conn, id: i64, verb: &str) -> Result<()> {
    let v: Value = conn
        .client()?
        .post(&format!("v1/operators/{id}/{verb}"), &json!({}))
        .await?;
    emit(out, v.clone(), || {
        format!(
            "operator {} is {}",
            v["operator"]["name"].as_str().unwrap_or(""),
            v["operator"]["status"].as_str().unwrap_or("")
        )
    });
    Ok(())
}
