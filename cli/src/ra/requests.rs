//! `gpki ra submit | import | verify-identity | approve | reject | requests | show |
//! renew`: certificate requests through the RA service, and how their replies are
//! shown and saved.

use std::path::PathBuf;

use clap::Args;
use gpki_pki::{Error, ErrorKind, Result};
use serde_json::{json, Value};

use super::{Conn, IdentityArgs, KmOut};
use crate::{emit, read_file, Global};

/// The arguments of `gpki ra submit`.
#[derive(Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    conn: Conn,
    #[arg(long)]
    idempotency_key: String,
    #[arg(long)]
    profile: String,
    #[arg(long)]
    subject: String,
    /// PKCS#10 request (PEM)
    #[arg(long)]
    csr: PathBuf,
    /// SAN entries (email:…, dns:…), repeatable
    #[arg(long = "san")]
    sans: Vec<String>,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Write the certificate here when it is issued
    #[arg(long)]
    out: Option<PathBuf>,
    /// A dual enrolment (official-sign): the official's transport key request
    /// (PKCS#10, RSA); the CA also issues the km certificate, whose key it
    /// makes, archives and seals to this key
    #[arg(long)]
    km_transport: Option<PathBuf>,
    #[command(flatten)]
    km_out: KmOut,
}

/// Submit a request for a certificate
pub(super) async fn submit(g: &Global, args: SubmitArgs) -> Result<()> {
    let SubmitArgs {
        conn,
        idempotency_key,
        profile,
        subject,
        csr,
        sans,
        identity,
        out: file,
        km_transport,
        km_out,
    } = args;
    let out = g.output;
    let mut body = json!({
        "idempotency_key": idempotency_key, "profile": profile, "subject": subject,
        "csr": String::from_utf8_lossy(&read_file(&csr, "CSR")?), "sans": sans,
    });
    if let Some(i) = identity.value() {
        body["identity"] = i;
    }
    if let Some(t) = &km_transport {
        body["km_transport"] =
            Value::String(String::from_utf8_lossy(&read_file(t, "transport request")?).into());
    }
    let v: Value = conn.client()?.post("v1/requests", &body).await?;
    request_reply(out, &v, file.as_ref(), &km_out)?;
    Ok(())
}

/// The arguments of `gpki ra import`.
#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    conn: Conn,
    #[arg(long)]
    csv: PathBuf,
    #[arg(long)]
    profile: String,
    /// Requests in flight at once
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

/// Submit every official of a CSV file (header request_id,subject,csr[,san]
/// [,identity_method,identity_document]; csr names a PKCS#10 file beside it);
/// request_id is the idempotency key, so rerunning the file submits nothing twice
pub(super) async fn import(g: &Global, args: ImportArgs) -> Result<()> {
    let ImportArgs {
        conn,
        csv,
        profile,
        concurrency,
    } = args;
    let out = g.output;
    let client = conn.client()?;
    let total = gpki_ca::batch::read_csv(&csv)?.len();
    let bar = indicatif::ProgressBar::new(total as u64);
    if out == crate::Output::Json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} submitting [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("progress template")
        .progress_chars("=> "),
    );
    let report = crate::ra_import::import(&client, &csv, &profile, concurrency, &|n| {
        bar.set_position(n as u64)
    })
    .await?;
    bar.finish_and_clear();
    emit(out, serde_json::to_value(&report).expect("JSON"), || {
        let mut t = format!(
            "{} rows: {} issued, {} done before (replayed), {} waiting for approval, {} failed\n{:.1} s, {:.0} rows/s, latency p50 {:.1} ms, p99 {:.1} ms",
            report.rows,
            report.issued,
            report.already_done,
            report.waiting,
            report.failed.len(),
            report.seconds,
            report.per_second,
            report.latency_ms.p50,
            report.latency_ms.p99,
        );
        for f in &report.failed {
            t += &format!(
                "\n  line {} ({}): {}: {}",
                f.line, f.request_id, f.kind, f.error
            );
        }
        if !report.failed.is_empty() {
            t += "\nrun the same file again to retry the failed rows; answered rows are not submitted twice";
        }
        t
    });
    if !report.failed.is_empty() {
        return Err(Error::new(
            ErrorKind::PolicyViolation,
            format!("{} of {} rows failed", report.failed.len(), report.rows),
        ));
    }
    Ok(())
}

/// The arguments of `gpki ra verify-identity`.
#[derive(Args)]
pub struct VerifyIdentityArgs {
    #[command(flatten)]
    conn: Conn,
    id: i64,
    #[arg(long)]
    method: String,
    #[arg(long)]
    document: String,
}

/// Record how the official's identity was verified
pub(super) async fn verify_identity(g: &Global, args: VerifyIdentityArgs) -> Result<()> {
    let VerifyIdentityArgs {
        conn,
        id,
        method,
        document,
    } = args;
    let out = g.output;
    let v: Value = conn
        .client()?
        .post(
            &format!("v1/requests/{id}/identity"),
            &json!({ "method": method, "document": document }),
        )
        .await?;
    request_reply(out, &v, None, &KmOut::none())?;
    Ok(())
}

/// The arguments of `gpki ra approve`.
#[derive(Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    conn: Conn,
    id: i64,
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    km_out: KmOut,
}

/// Approve a submitted request (a second operator, under dual control)
pub(super) async fn approve(g: &Global, args: ApproveArgs) -> Result<()> {
    let ApproveArgs {
        conn,
        id,
        out: file,
        km_out,
    } = args;
    let out = g.output;
    let v: Value = conn
        .client()?
        .post(&format!("v1/requests/{id}/approve"), &json!({}))
        .await?;
    request_reply(out, &v, file.as_ref(), &km_out)?;
    Ok(())
}

/// The arguments of `gpki ra reject`.
#[derive(Args)]
pub struct RejectArgs {
    #[command(flatten)]
    conn: Conn,
    id: i64,
    #[arg(long)]
    reason: String,
}

/// Reject a submitted request
pub(super) async fn reject(g: &Global, args: RejectArgs) -> Result<()> {
    let RejectArgs { conn, id, reason } = args;
    let out = g.output;
    let v: Value = conn
        .client()?
        .post(
            &format!("v1/requests/{id}/reject"),
            &json!({ "reason": reason }),
        )
        .await?;
    request_reply(out, &v, None, &KmOut::none())?;
    Ok(())
}

/// The arguments of `gpki ra requests`.
#[derive(Args)]
pub struct RequestsArgs {
    #[command(flatten)]
    conn: Conn,
    #[arg(long)]
    status: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

/// The RA's requests, newest first
pub(super) async fn requests(g: &Global, args: RequestsArgs) -> Result<()> {
    let RequestsArgs {
        conn,
        status,
        limit,
    } = args;
    let out = g.output;
    let mut path = format!("v1/requests?limit={limit}");
    if let Some(s) = status {
        path += &format!("&status={s}");
    }
    let v: Value = conn.client()?.get(&path).await?;
    emit(out, v.clone(), || {
        v["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "{}\t{}\t{}\t{}\t{}",
                    r["id"],
                    r["kind"].as_str().unwrap_or(""),
                    r["status"].as_str().unwrap_or(""),
                    r["profile"].as_str().unwrap_or(""),
                    r["subject"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// The arguments of `gpki ra show`.
#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    conn: Conn,
    id: i64,
}

/// One request
pub(super) async fn show(g: &Global, args: ShowArgs) -> Result<()> {
    let ShowArgs { conn, id } = args;
    let out = g.output;
    let v: Value = conn.client()?.get(&format!("v1/requests/{id}")).await?;
    request_reply(out, &v, None, &KmOut::none())?;
    Ok(())
}

/// The arguments of `gpki ra renew`.
#[derive(Args)]
pub struct RenewArgs {
    #[command(flatten)]
    conn: Conn,
    #[arg(long)]
    idempotency_key: String,
    #[arg(long)]
    serial: String,
    /// A new key's PKCS#10 request; without it the key is kept
    #[arg(long)]
    csr: Option<PathBuf>,
    #[arg(long)]
    out: Option<PathBuf>,
    /// For a certificate with a km pair: the transport key request for the
    /// pair's new km key
    #[arg(long)]
    km_transport: Option<PathBuf>,
    #[command(flatten)]
    km_out: KmOut,
    /// A new key (--csr, or a pair's new km key) needs the identity verified
    /// again, as a first issuance does
    #[command(flatten)]
    identity: IdentityArgs,
}

/// Renew a certificate inside the RA's renewal window
pub(super) async fn renew(g: &Global, args: RenewArgs) -> Result<()> {
    let RenewArgs {
        conn,
        idempotency_key,
        serial,
        csr,
        out: file,
        km_transport,
        km_out,
        identity,
    } = args;
    let out = g.output;
    let mut body = json!({ "idempotency_key": idempotency_key, "serial": serial });
    if let Some(i) = identity.value() {
        body["identity"] = i;
    }
    if let Some(c) = csr {
        body["csr"] = Value::String(String::from_utf8_lossy(&read_file(&c, "CSR")?).into());
    }
    if let Some(t) = &km_transport {
        body["km_transport"] =
            Value::String(String::from_utf8_lossy(&read_file(t, "transport request")?).into());
    }
    let v: Value = conn.client()?.post("v1/renewals", &body).await?;
    request_reply(out, &v, file.as_ref(), &km_out)?;
    Ok(())
}

pub(super) fn request_reply(
    out: crate::Output,
    v: &Value,
    file: Option<&PathBuf>,
    km: &KmOut,
) -> Result<()> {
    let saved = save_certificate(v, file, false)?;
    let km_saved = km.save(v)?;
    emit(out, v.clone(), || {
        let mut t = request_text(v);
        if let Some(s) = saved {
            t += &format!("\n  certificate written to {s}");
        }
        if let Some(serial) = v["certificate"]["km"]["certificate"]["serial"].as_str() {
            t += &format!("\n  km certificate {serial}");
        }
        for s in km_saved {
            t += &format!("\n  written to {s}");
        }
        if let Some(p) = v["certificate"]["pair"].as_object() {
            t += &format!(
                "\n  its pair {} ({}) is {}",
                p["serial"].as_str().unwrap_or(""),
                p["profile"].as_str().unwrap_or(""),
                p["status"].as_str().unwrap_or("")
            );
        }
        t
    });
    Ok(())
}

fn request_text(v: &Value) -> String {
    let r = &v["request"];
    let mut t = format!(
        "request {} ({}) {}: {} {}",
        r["id"],
        r["kind"].as_str().unwrap_or(""),
        r["status"].as_str().unwrap_or(""),
        r["profile"].as_str().unwrap_or(""),
        r["subject"].as_str().unwrap_or("")
    );
    if let Some(serial) = v["certificate"]["serial"].as_str() {
        t += &format!(
            "\n  certificate {serial} of CA {}",
            v["certificate"]["ca"].as_str().unwrap_or("")
        );
    }
    if v["replayed"].as_bool() == Some(true) {
        t += "\n  (a replay: this is the request made the first time)";
    }
    let id = &r["id"];
    for w in v["waiting_for"].as_array().into_iter().flatten() {
        match w.as_str() {
            Some("identity") => t += &format!(
                "\n  waiting for an identity verification: gpki ra verify-identity {id} --method face-to-face|contact-free --document \"…\", then gpki ra approve {id}"
            ),
            Some("second-operator") => t += &format!(
                "\n  waiting for a second operator (dual control): another operator of this RA runs gpki ra approve {id}"
            ),
            _ => t += &format!("\n  waiting for {w}"),
        }
    }
    t
}

/// Writes the certificate of a request reply to `out`, when issued.
/// With `chain`, the CA chain follows the certificate (what a TLS client sends).
pub(super) fn save_certificate(
    reply: &Value,
    out: Option<&PathBuf>,
    chain: bool,
) -> Result<Option<String>> {
    let (Some(out), Some(pem)) = (out, reply["certificate"]["certificate"].as_str()) else {
        return Ok(None);
    };
    let mut text = pem.to_string();
    if chain {
        for c in reply["certificate"]["chain"]
            .as_array()
            .into_iter()
            .flatten()
        {
            text += c.as_str().unwrap_or_default();
        }
    }
    crate::write_file(out, text.as_bytes())?;
    Ok(Some(out.display().to_string()))
}
