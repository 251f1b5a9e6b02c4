//! `gpki ra import --csv`: thousands of officials submitted to the RA service at
//! once. Each row's `request_id` is its idempotency key, so a rerun of the same
//! file (after a crash, a CA outage, a lost connection) submits nothing twice:
//! rows already answered are replayed, rows the CA did not answer are asked again.

use std::path::Path;
use std::sync::Arc;

use gpki_pki::{Error, ErrorKind, Result};
use gpki_service::api::ApiClient;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// What became of the rows.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub rows: usize,
    /// Issued by this run.
    pub issued: usize,
    /// Answered by an earlier run (a replay).
    pub already_done: usize,
    /// Recorded, waiting for a second operator or an identity verification.
    pub waiting: usize,
    pub failed: Vec<ImportFailure>,
    /// Wall time of the run and answers per second.
    pub seconds: f64,
    pub per_second: f64,
    /// Per-request latency (submission to answer), milliseconds.
    pub latency_ms: Latency,
}

#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Serialize)]
pub struct ImportFailure {
    pub line: usize,
    pub request_id: String,
    pub kind: ErrorKind,
    pub error: String,
}

/// Submits every row of `csv` (header `request_id,subject,csr[,san][,identity_method,identity_document]`)
/// as profile `profile`, `concurrency` at a time; `progress` is told each answer.
pub async fn import(
    client: &ApiClient,
    csv: &Path,
    profile: &str,
    concurrency: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<ImportReport> {
    let rows = gpki_ca::batch::read_csv(csv)?;
    for r in &rows {
        if r.csr.is_none() {
            return Err(Error::malformed(format!(
                "{} line {}: an RA import needs a `csr` column (the official's request)",
                csv.display(),
                r.line
            )));
        }
    }
    let mut report = ImportReport {
        rows: rows.len(),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for row in rows {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let client = client.clone();
        let mut body = json!({
            "idempotency_key": row.request_id,
            "profile": profile,
            "subject": row.subject,
            "csr": String::from_utf8_lossy(row.csr.as_deref().unwrap_or_default()),
            "sans": row.sans.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        });
        if let Some((method, document)) = &row.identity {
            body["identity"] = json!({ "method": method, "document": document });
        }
        tasks.spawn(async move {
            let sent = std::time::Instant::now();
            let answer: Result<Value> = client.post("v1/requests", &body).await;
            let took = sent.elapsed();
            drop(permit);
            (row.line, row.request_id, answer, took)
        });
    }
    let mut done = 0;
    let mut latencies = Vec::with_capacity(report.rows);
    while let Some(joined) = tasks.join_next().await {
        let (line, request_id, answer, took) =
            joined.map_err(|e| Error::internal(format!("import task: {e}")))?;
        latencies.push(took.as_secs_f64() * 1000.0);
        match answer {
            Ok(v) => match (v["request"]["status"].as_str(), v["replayed"] == true) {
                (Some("issued"), false) => report.issued += 1,
                (Some("issued" | "revoked"), true) => report.already_done += 1,
                (Some("submitted" | "approved"), _) => report.waiting += 1,
                (status, _) => report.failed.push(ImportFailure {
                    line,
                    request_id,
                    kind: ErrorKind::Conflict,
                    error: format!(
                        "request is {}{}",
                        status.unwrap_or("unknown"),
                        v["request"]["note"]
                            .as_str()
                            .map(|n| format!(": {n}"))
                            .unwrap_or_default()
                    ),
                }),
            },
            Err(e) => report.failed.push(ImportFailure {
                line,
                request_id,
                kind: e.kind,
                error: e.detail,
            }),
        }
        done += 1;
        progress(done);
    }
    report.failed.sort_by_key(|f| f.line);
    report.seconds = started.elapsed().as_secs_f64();
    report.per_second = report.rows as f64 / report.seconds.max(1e-9);
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    report.latency_ms = Latency {
        p50: at(0.50),
        p99: at(0.99),
        max: latencies.last().copied().unwrap_or(0.0),
    };
    Ok(report)
}
