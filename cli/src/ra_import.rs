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
            let answer = submit(&client, &body).await;
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

/// Attempts at most for one row whose answers say the RA is unavailable.
const ATTEMPTS: u32 = 5;

/// Submits one row, again while the RA answers that it (or its store) is
/// unavailable: safe, because the row's idempotency key makes a second
/// submission a replay of the first, never a second request. A replay that
/// answers a retry reports the row as this run's work (not `replayed`): the
/// first attempt most likely made it (were it an earlier run's, the report
/// counts it issued rather than already done; nothing is issued twice).
async fn submit(client: &ApiClient, body: &Value) -> Result<Value> {
    let first_wait = std::time::Duration::from_millis(200);
    retrying(first_wait, || client.post::<Value>("v1/requests", body)).await
}

/// `send` until it answers other than `Unavailable` or [`ATTEMPTS`] are spent,
/// waiting `wait`, then twice as long each time, between attempts.
async fn retrying<F, Fut>(mut wait: std::time::Duration, send: F) -> Result<Value>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Value>>,
{
    for attempt in 1.. {
        match send().await {
            Err(e) if e.kind == ErrorKind::Unavailable && attempt < ATTEMPTS => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Ok(mut v) if attempt > 1 => {
                v["replayed"] = Value::Bool(false);
                return Ok(v);
            }
            answer => return answer,
        }
    }
    unreachable!("the loop returns by its last attempt")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// Answers `answers` in turn, counting the attempts.
    async fn run(answers: Vec<Result<Value>>) -> (Result<Value>, u32) {
        let sent = AtomicU32::new(0);
        let answers = std::sync::Mutex::new(answers.into_iter());
        let result = retrying(Duration::from_millis(1), || {
            sent.fetch_add(1, Ordering::SeqCst);
            let next = answers
                .lock()
                .unwrap()
                .next()
                .expect("an answer per attempt");
            async move { next }
        })
        .await;
        (result, sent.load(Ordering::SeqCst))
    }

    fn unavailable() -> Result<Value> {
        Err(Error::new(ErrorKind::Unavailable, "store is unreachable"))
    }

    fn issued(replayed: bool) -> Result<Value> {
        Ok(json!({ "request": { "status": "issued" }, "replayed": replayed }))
    }

    /// An unavailable RA is asked again; the replay that answers a retry is
    /// this run's issuance; any other refusal is final at once; an RA still
    /// unavailable after every attempt is the row's failure.
    #[tokio::test]
    async fn unavailable_is_retried_and_nothing_else_is() {
        let (r, n) = run(vec![unavailable(), unavailable(), issued(true)]).await;
        assert_eq!((r.unwrap()["replayed"].clone(), n), (json!(false), 3));
        let (r, n) = run(vec![issued(true)]).await;
        assert_eq!((r.unwrap()["replayed"].clone(), n), (json!(true), 1));
        let conflict = Err(Error::conflict("request `x` was made for another request"));
        let (r, n) = run(vec![conflict]).await;
        assert_eq!((r.unwrap_err().kind, n), (ErrorKind::Conflict, 1));
        let (r, n) = run((0..ATTEMPTS).map(|_| unavailable()).collect()).await;
        assert_eq!((r.unwrap_err().kind, n), (ErrorKind::Unavailable, ATTEMPTS));
    }
}
