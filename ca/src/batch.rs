//! Bulk issuance from a CSV of officials, resumable.
//!
//! Each row carries a `request_id` that becomes the certificate's request key: the
//! store holds at most one certificate per (CA, request key). A second run skips
//! rows already issued and finishes rows left `pending` by a crash: the recorded
//! tbsCertificate is signed as it stands (same serial), when the row's key is still
//! at hand (a CSR, or the key file written before the record); otherwise the pending
//! row is abandoned and the row issued afresh.
//!
//! Rows are processed in chunks: one transaction records a chunk's tbsCertificates,
//! then they are signed, then one transaction stores them with their audit records.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use der::{Decode, Encode};
use gpki_pki::cert::{Linted, SanEntry};
use gpki_pki::signer::Passphrase;
use gpki_pki::{Error, KeyType, Result, Signer, SoftwareKey};
use gpki_store::{AuditEvent, CertStatus};
use serde_json::json;
use x509_cert::certificate::TbsCertificate;

use crate::{Ca, IssueRequest, Issuer, KeySource};

/// One CSV row, parsed.
#[derive(Debug, Clone)]
pub struct BatchRow {
    /// 1-based line in the CSV (header is line 1).
    pub line: usize,
    pub request_id: String,
    pub subject: String,
    pub sans: Vec<SanEntry>,
    /// CSR bytes, when the row names a CSR file.
    pub csr: Option<Vec<u8>>,
    /// How the official's identity was verified (`identity_method`,
    /// `identity_document` columns), for requests through an RA.
    pub identity: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub ca: String,
    pub profile: String,
    /// Key type generated for rows without a CSR.
    pub key_type: KeyType,
    /// Where certificates (`ID.crt.pem`) and generated keys (`ID.key.pem`) go.
    pub out_dir: PathBuf,
    /// Encrypts generated keys; required when any row has no CSR.
    pub key_passphrase: Option<Passphrase>,
    pub chunk: usize,
}

/// What a batch run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BatchReport {
    pub rows: usize,
    pub issued: usize,
    pub already_issued: usize,
    pub resumed: usize,
    pub abandoned: usize,
    pub failed: Vec<RowError>,
    /// Seconds from the CA's key in hand to the last row settled (the start-up
    /// before it, opening the key and the store, is not counted), and rows per
    /// second over them.
    pub seconds: f64,
    pub per_second: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RowError {
    pub line: usize,
    pub request_id: String,
    pub error: String,
}

impl RowError {
    /// `row` failed with `e`.
    fn of(row: &BatchRow, e: &Error) -> RowError {
        RowError {
            line: row.line,
            request_id: row.request_id.clone(),
            error: e.to_string(),
        }
    }
}

/// Reads the CSV: header `request_id,subject[,san][,csr]`. `san` holds
/// `;`-separated `dns:`/`email:`/`ip:`/`uri:` entries; `csr` a path relative to
/// the CSV's folder. Structural problems refuse the whole file, naming the line.
pub fn read_csv(path: &Path) -> Result<Vec<BatchRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Error::not_found(format!("cannot read {}: {e}", path.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| Error::malformed(format!("{}: header: {e}", path.display())))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let id_col = col("request_id").ok_or_else(|| {
        Error::malformed(format!(
            "{}: header needs a `request_id` column",
            path.display()
        ))
    })?;
    let subject_col = col("subject").ok_or_else(|| {
        Error::malformed(format!(
            "{}: header needs a `subject` column",
            path.display()
        ))
    })?;
    let san_col = col("san");
    let csr_col = col("csr");
    let method_col = col("identity_method");
    let document_col = col("identity_document");
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rows = Vec::new();
    let mut seen = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let at = |what: String| Error::malformed(format!("{} line {line}: {what}", path.display()));
        let record = record.map_err(|e| at(e.to_string()))?;
        let request_id = record.get(id_col).unwrap_or("").to_string();
        if request_id.is_empty()
            || !request_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || request_id.starts_with('.')
        {
            return Err(at(format!(
                "request_id `{request_id}` must be non-empty letters, digits, `-`, `_` or `.`"
            )));
        }
        if let Some(first) = seen.insert(request_id.clone(), line) {
            return Err(at(format!(
                "request_id `{request_id}` repeats line {first}"
            )));
        }
        let subject = record.get(subject_col).unwrap_or("").to_string();
        if subject.is_empty() {
            return Err(at("subject is empty".into()));
        }
        let sans = match san_col
            .and_then(|c| record.get(c))
            .filter(|s| !s.is_empty())
        {
            Some(s) => s
                .split(';')
                .map(|p| p.trim().parse::<SanEntry>())
                .collect::<Result<Vec<_>>>()
                .map_err(|e| at(e.detail))?,
            None => Vec::new(),
        };
        let csr = match csr_col
            .and_then(|c| record.get(c))
            .filter(|s| !s.is_empty())
        {
            Some(p) => Some(
                std::fs::read(base.join(p)).map_err(|e| at(format!("cannot read CSR {p}: {e}")))?,
            ),
            None => None,
        };
        let field = |c: Option<usize>| {
            c.and_then(|c| record.get(c))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let identity = match (field(method_col), field(document_col)) {
            (Some(m), Some(d)) => Some((m, d)),
            (None, None) => None,
            _ => {
                return Err(at(
                    "identity_method and identity_document go together".into()
                ))
            }
        };
        rows.push(BatchRow {
            line,
            request_id,
            subject,
            sans,
            csr,
            identity,
        });
    }
    Ok(rows)
}

fn write_cert(dir: &Path, request_id: &str, der: &[u8]) -> Result<()> {
    let path = dir.join(format!("{request_id}.crt.pem"));
    std::fs::write(&path, gpki_pki::pem::encode("CERTIFICATE", der))
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))
}

/// `items.iter().map(f)` on every core, in order. Signing and CSR verification are
/// the CPU-bound steps of a batch; the store writes stay on one connection.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("batch worker panicked"))
            .collect()
    })
}

/// A pending row finished from its recorded tbsCertificate.
struct Resumed {
    id: i64,
    der: Vec<u8>,
    request_id: String,
    serial: String,
    spki_sha256: String,
}

struct Prepared {
    row: BatchRow,
    plan: Linted,
    key_file: Option<PathBuf>,
}

impl Ca {
    /// Issues every row not yet issued. `progress` is called with the number of
    /// rows finished (issued, skipped or failed) after each chunk.
    pub async fn issue_batch(
        &self,
        rows: Vec<BatchRow>,
        opts: &BatchOptions,
        progress: &mut dyn FnMut(usize),
    ) -> Result<BatchReport> {
        let profile = self.profiles().get(&opts.profile)?.clone();
        let issuer = self.issuer(&opts.ca).await?;
        if rows.iter().any(|r| r.csr.is_none()) && opts.key_passphrase.is_none() {
            return Err(Error::malformed(
                "rows without a CSR get generated keys, which need --out-pass-file",
            ));
        }
        std::fs::create_dir_all(&opts.out_dir).map_err(|e| {
            Error::internal(format!("cannot create {}: {e}", opts.out_dir.display()))
        })?;
        // Generated keys are encrypted under one key-encryption key per run: PBKDF2
        // at 600,000 rounds once, not once per official.
        let kek = match (&opts.key_passphrase, rows.iter().any(|r| r.csr.is_none())) {
            (Some(pass), true) => Some(gpki_pki::signer::KeyEncryption::derive(pass)?),
            _ => None,
        };
        let started = std::time::Instant::now();
        let key_prefix = format!("batch:{}:", opts.profile);
        let existing: HashMap<String, (CertStatus, i64)> = self
            .store()
            .request_keys(issuer.record.id, &key_prefix)
            .await?
            .into_iter()
            .map(|(k, s, id)| (k, (s, id)))
            .collect();
        let mut report = BatchReport {
            rows: rows.len(),
            ..Default::default()
        };
        let chunk_size = opts.chunk.max(1);
        let mut done = 0;
        for chunk in rows.chunks(chunk_size) {
            // The CA may be revoked while a long batch runs: checked again per chunk.
            self.store()
                .standing(&issuer.record, gpki_pki::time::now())
                .await?
                .require_active(&opts.ca)?;
            let (resumed, fresh) = self
                .sort_rows(
                    &issuer,
                    &profile,
                    chunk,
                    &existing,
                    &key_prefix,
                    opts,
                    &mut report,
                )
                .await;
            // Verifying CSRs and planning is CPU work: spread it over the cores.
            let results = parallel_map(&fresh, |row| {
                self.prepare_row(&issuer, &profile, row, opts, kek.as_ref())
            });
            let mut prepared = Vec::with_capacity(fresh.len());
            for (row, result) in fresh.iter().zip(results) {
                match result {
                    Ok(p) => prepared.push(p),
                    Err(e) => report.failed.push(RowError::of(row, &e)),
                }
            }
            let (prepared, resumed) = self
                .without_compromised_keys(chunk, prepared, resumed, &mut report)
                .await?;
            report.resumed += resumed.len();
            let issued = self
                .record_sign_store_many(
                    &issuer,
                    &profile.spec.name,
                    &key_prefix,
                    prepared,
                    resumed,
                    opts,
                )
                .await?;
            report.issued += issued;
            done += chunk.len();
            progress(done);
        }
        report.seconds = started.elapsed().as_secs_f64();
        report.per_second = report.rows as f64 / report.seconds.max(1e-9);
        Ok(report)
    }

    /// Sorts a chunk's rows: pending rows of an earlier run resumed (or
    /// abandoned, then issued afresh), rows issued already counted and skipped,
    /// the rest returned to be planned.
    #[allow(clippy::too_many_arguments)]
    async fn sort_rows<'r>(
        &self,
        issuer: &Issuer,
        profile: &gpki_pki::profile::Profile,
        chunk: &'r [BatchRow],
        existing: &HashMap<String, (CertStatus, i64)>,
        key_prefix: &str,
        opts: &BatchOptions,
        report: &mut BatchReport,
    ) -> (Vec<Resumed>, Vec<&'r BatchRow>) {
        let mut resumed = Vec::new();
        let mut fresh = Vec::with_capacity(chunk.len());
        for row in chunk {
            let request_key = format!("{key_prefix}{}", row.request_id);
            match existing.get(&request_key) {
                Some((CertStatus::Pending, id)) => {
                    match self.resume(issuer, profile, row, *id, opts).await {
                        Ok(Some(r)) => {
                            resumed.push(r);
                            continue;
                        }
                        Ok(None) => report.abandoned += 1,
                        Err(e) => {
                            report.failed.push(RowError::of(row, &e));
                            continue;
                        }
                    }
                }
                Some(_) => {
                    report.already_issued += 1;
                    continue;
                }
                None => {}
            }
            fresh.push(row);
        }
        (resumed, fresh)
    }

    /// A key revoked as compromised is never certified again: the rows of such
    /// keys fail here, so the rest of the chunk goes on (the store refuses them
    /// too).
    async fn without_compromised_keys(
        &self,
        chunk: &[BatchRow],
        prepared: Vec<Prepared>,
        resumed: Vec<Resumed>,
        report: &mut BatchReport,
    ) -> Result<(Vec<Prepared>, Vec<Resumed>)> {
        let mut hashes: Vec<String> = prepared
            .iter()
            .map(|p| {
                Ok(hex::encode(openssl::sha::sha256(
                    &p.plan.tbs().subject_public_key_info.to_der()?,
                )))
            })
            .collect::<Result<_>>()?;
        hashes.extend(resumed.iter().map(|r| r.spki_sha256.clone()));
        let compromised: HashMap<String, Error> = self
            .store()
            .compromised_keys(&hashes)
            .await?
            .into_iter()
            .collect();
        if compromised.is_empty() {
            return Ok((prepared, resumed));
        }
        let refuse = |line: usize, request_id: &str, key: &str| {
            compromised.get(key).map(|e| RowError {
                line,
                request_id: request_id.to_string(),
                error: e.to_string(),
            })
        };
        let mut kept = Vec::with_capacity(prepared.len());
        for (p, h) in prepared.into_iter().zip(&hashes) {
            match refuse(p.row.line, &p.row.request_id, h) {
                Some(e) => report.failed.push(e),
                None => kept.push(p),
            }
        }
        let lines: HashMap<&str, usize> = chunk
            .iter()
            .map(|r| (r.request_id.as_str(), r.line))
            .collect();
        let mut kept_resumed = Vec::with_capacity(resumed.len());
        for r in resumed {
            let line = lines.get(r.request_id.as_str()).copied().unwrap_or(0);
            match refuse(line, &r.request_id, &r.spki_sha256) {
                Some(e) => report.failed.push(e),
                None => kept_resumed.push(r),
            }
        }
        Ok((kept, kept_resumed))
    }

    fn prepare_row(
        &self,
        issuer: &Issuer,
        profile: &gpki_pki::profile::Profile,
        row: &BatchRow,
        opts: &BatchOptions,
        kek: Option<&gpki_pki::signer::KeyEncryption>,
    ) -> Result<Prepared> {
        let (key, key_file) = match &row.csr {
            Some(csr) => (KeySource::Csr(csr.clone()), None),
            None => {
                let path = opts.out_dir.join(format!("{}.key.pem", row.request_id));
                let pass = opts.key_passphrase.as_ref().expect("checked above");
                // A key written by a run that crashed before recording is reused.
                let key = if path.exists() {
                    SoftwareKey::read_encrypted(&path, pass)?
                } else {
                    let k = SoftwareKey::generate(opts.key_type)?;
                    match kek {
                        Some(kek) => k.write_encrypted_with(&path, kek)?,
                        None => k.write_encrypted(&path, pass)?,
                    }
                    k
                };
                (
                    KeySource::PublicKey(key.public_key_der().to_vec()),
                    Some(path),
                )
            }
        };
        let plan = self.prepare(
            issuer,
            profile,
            &row_request(opts, row, key),
            gpki_pki::time::now(),
        )?;
        Ok(Prepared {
            row: row.clone(),
            plan,
            key_file,
        })
    }

    /// A row left pending by a crash: sign its recorded tbsCertificate if the key
    /// is still at hand, else abandon it (and return None so it is issued afresh).
    ///
    /// The recorded bytes are no licence to sign: the row is planned again, as for
    /// a first issuance (request verified, profile applied, lints run) with the
    /// recorded serial and time, and the result must be exactly the recorded
    /// tbsCertificate and agree with the row's profile, subject, validity and key.
    /// Anything else (an edited row, a changed profile or CA) refuses the row.
    async fn resume(
        &self,
        issuer: &Issuer,
        profile: &gpki_pki::profile::Profile,
        row: &BatchRow,
        id: i64,
        opts: &BatchOptions,
    ) -> Result<Option<Resumed>> {
        let record = self.store().certificate_by_id(id).await?;
        let tbs = TbsCertificate::from_der(&record.tbs).map_err(|e| {
            Error::conflict(format!(
                "recorded tbsCertificate of serial {} does not decode: {e}",
                record.serial
            ))
        })?;
        let recorded_spki = tbs.subject_public_key_info.to_der()?;
        let key = match &row.csr {
            Some(csr) => {
                let csr = gpki_pki::csr::parse_and_verify(csr)?;
                (csr.spki_der() == recorded_spki.as_slice()).then_some(KeySource::Verified(csr))
            }
            None => {
                let path = opts.out_dir.join(format!("{}.key.pem", row.request_id));
                match (path.exists(), &opts.key_passphrase) {
                    (true, Some(pass)) => {
                        let spki = SoftwareKey::read_encrypted(&path, pass)?
                            .public_key_der()
                            .to_vec();
                        (spki == recorded_spki).then_some(KeySource::PublicKey(spki))
                    }
                    _ => None,
                }
            }
        };
        let Some(key) = key else {
            let event = AuditEvent::new(
                &self.actor,
                "cert.abandon",
                format!("cert:{}/{}", opts.ca, record.serial),
                json!({ "reason": "key of pending certificate is lost" }),
            );
            self.store().abandon(id, &event).await?;
            return Ok(None);
        };
        let refuse = |what: &str| {
            Error::conflict(format!(
                "pending certificate {} was not resumed: {what}; nothing was signed",
                record.serial
            ))
        };
        // Signing now what was planned long ago would backdate notBefore (the BR
        // allow 48 hours), and a notBefore ahead of now is not what a first
        // issuance plans: both are refused (revoke the row and issue afresh).
        let now = gpki_pki::time::now();
        if now - record.not_before > 48 * 3600 || record.not_before > now + 300 {
            return Err(refuse(&format!(
                "it was planned for {}, too far from now to be signed as planned; revoke it and issue the row afresh",
                gpki_pki::time::rfc3339(record.not_before)
            )));
        }
        if record.profile != profile.name() {
            return Err(refuse(&format!(
                "its row names profile {}, not {}",
                record.profile,
                profile.name()
            )));
        }
        let serial = gpki_pki::serial::SerialNumber::from_bytes(tbs.serial_number.as_bytes())?;
        if serial.to_hex() != record.serial {
            return Err(refuse(
                "its tbsCertificate carries another serial than its row",
            ));
        }
        let req = row_request(opts, row, key);
        let plan = self
            .prepare_with_serial(issuer, profile, &req, serial, record.not_before)
            .map_err(|e| refuse(&format!("planned again, it is refused: {e}")))?;
        if plan.tbs_der() != record.tbs {
            return Err(refuse(&format!(
                "its recorded tbsCertificate differs from what the profile and CA plan for row {} ({})",
                row.line,
                tbs_difference(plan.tbs(), &tbs)
            )));
        }
        let planned = Ca::new_certificate(issuer.record.id, profile.name(), &plan, None, None)?;
        if (
            planned.subject.as_str(),
            planned.not_before,
            planned.not_after,
            planned.spki_sha256.as_str(),
        ) != (
            record.subject.as_str(),
            record.not_before,
            record.not_after,
            record.spki_sha256.as_str(),
        ) {
            return Err(refuse(
                "its row's subject, validity or key hash disagree with its tbsCertificate",
            ));
        }
        if record.not_after <= gpki_pki::time::now() {
            return Err(refuse("it would already have expired"));
        }
        // What was recorded is what was linted again just now: sign that.
        let der = gpki_pki::cert::sign(&*issuer.key, &plan)?;
        Ok(Some(Resumed {
            id,
            der,
            request_id: row.request_id.clone(),
            serial: record.serial,
            spki_sha256: record.spki_sha256,
        }))
    }

    async fn record_sign_store_many(
        &self,
        issuer: &Issuer,
        profile: &str,
        key_prefix: &str,
        prepared: Vec<Prepared>,
        resumed: Vec<Resumed>,
        opts: &BatchOptions,
    ) -> Result<usize> {
        let news = prepared
            .iter()
            .map(|p| {
                Ca::new_certificate(
                    issuer.record.id,
                    profile,
                    &p.plan,
                    None,
                    Some(format!("{key_prefix}{}", p.row.request_id)),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let ids = if news.is_empty() {
            Vec::new()
        } else {
            self.store().record_tbs_many(&news).await?
        };
        gpki_store::failpoint::crash("after-record");
        let mut finished = Vec::with_capacity(ids.len() + resumed.len());
        let signed = parallel_map(&prepared, |p| -> Result<Vec<u8>> {
            let der = gpki_pki::cert::sign(&*issuer.key, &p.plan)?;
            write_cert(&opts.out_dir, &p.row.request_id, &der)?;
            Ok(der)
        });
        for (((p, id), new), der) in prepared.iter().zip(&ids).zip(&news).zip(signed) {
            let der = der?;
            let event = AuditEvent::new(
                &self.actor,
                "cert.issue",
                format!("cert:{}/{}", issuer.record.name, new.serial),
                json!({ "profile": profile, "subject": new.subject, "not_after": new.not_after, "batch": p.row.request_id, "key_file": p.key_file.as_ref().map(|k| k.display().to_string()) }),
            );
            finished.push((*id, der, event, p.row.request_id.clone()));
        }
        for r in resumed {
            let event = AuditEvent::new(
                &self.actor,
                "cert.issue",
                format!("cert:{}/{}", issuer.record.name, r.serial),
                json!({ "profile": profile, "batch": r.request_id, "resumed": true }),
            );
            finished.push((r.id, r.der, event, r.request_id));
        }
        for (_, der, _, request_id) in &finished {
            let pem = gpki_pki::pem::encode("CERTIFICATE", der);
            let path = opts.out_dir.join(format!("{request_id}.crt.pem"));
            std::fs::write(&path, pem)
                .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))?;
        }
        let n = finished.len();
        let batch: Vec<(i64, Vec<u8>, AuditEvent)> = finished
            .into_iter()
            .map(|(id, der, ev, _)| (id, der, ev))
            .collect();
        if !batch.is_empty() {
            self.store().mark_issued_many(&batch).await?;
        }
        Ok(n)
    }
}

/// What a CSV row asks for. A first issuance and a resume plan from this one
/// request, so a resumed row is judged exactly as it was first planned.
fn row_request(opts: &BatchOptions, row: &BatchRow, key: KeySource) -> IssueRequest {
    IssueRequest {
        ca: opts.ca.clone(),
        profile: opts.profile.clone(),
        subject: Some(row.subject.clone()),
        key,
        sans: row.sans.clone(),
        validity_days: None,
        request_key: None,
        renewed_from: None,
    }
}

/// The first field in which two tbsCertificates differ, for the refusal.
fn tbs_difference(planned: &TbsCertificate, recorded: &TbsCertificate) -> &'static str {
    if planned.version != recorded.version {
        "version"
    } else if planned.signature != recorded.signature {
        "signature algorithm"
    } else if planned.issuer != recorded.issuer {
        "issuer"
    } else if planned.validity != recorded.validity {
        "validity"
    } else if planned.subject != recorded.subject {
        "subject"
    } else if planned.subject_public_key_info != recorded.subject_public_key_info {
        "subjectPublicKeyInfo"
    } else if planned.extensions != recorded.extensions {
        "extensions"
    } else {
        "encoding"
    }
}
