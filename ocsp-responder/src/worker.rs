//! The background worker: follows the store, signs again what changed, refreshes
//! pre-signed responses before they go stale, and renews responder certificates.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use gpki_pki::Result;
use gpki_store::{StatusListener, StatusRow};

use crate::authority::{self, Authority, Entry};
use crate::response::ResponderKey;
use crate::State;

/// Rows read from the store at a time.
const PAGE: i64 = 20_000;
/// Longest a steady-state read of the store may take before it counts as down (the
/// initial load, before the port opens, is not bounded).
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs until `shutdown` turns true.
pub async fn run(state: Arc<State>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let poll = Duration::from_millis(state.config.poll_interval_ms);
    let store_wait = Duration::from_millis(state.config.store_timeout_ms);
    let mut listener: Option<StatusListener> = None;
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler; responder files are still watched");
            None
        }
    };
    loop {
        if listener.is_none() && state.store_up() {
            // A black-holed network must not stall the worker: bounded like a query.
            listener = tokio::time::timeout(store_wait, state.store.status_listener())
                .await
                .ok()
                .and_then(|r| r.ok())
                .flatten();
        }
        let mut force_reload = false;
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(poll) => {}
            lost = notified(&mut listener) => {
                if lost {
                    listener = None;
                }
            }
            Some(()) = hung_up(&mut hangup) => {
                tracing::info!("SIGHUP: reloading responder files and reading the store");
                force_reload = true;
            }
        }
        // Loading a key file runs PBKDF2: off the async threads.
        let s2 = state.clone();
        let _ = tokio::task::spawn_blocking(move || reload_if_changed(&s2, force_reload)).await;
        let result = match tokio::time::timeout(SYNC_TIMEOUT, sync(&state)).await {
            Ok(r) => r,
            Err(_) => Err(gpki_pki::Error::new(
                gpki_pki::ErrorKind::Unavailable,
                format!("store did not answer within {SYNC_TIMEOUT:?}"),
            )),
        };
        state.set_store(&result);
        if result.is_ok() {
            if let Err(e) = refresh(&state).await {
                tracing::error!(error = %e, "refreshing pre-signed responses");
            }
        }
    }
}

/// Waits for SIGHUP (never, without a handler).
async fn hung_up(hangup: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match hangup {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Waits for a notification; true when the listener's connection was lost.
async fn notified(listener: &mut Option<StatusListener>) -> bool {
    match listener {
        Some(l) => l.recv().await.is_err(),
        None => std::future::pending().await,
    }
}

/// Reads everything new for every CA: certificates added since the last read,
/// then status changes. The first call loads every certificate.
pub async fn sync(state: &Arc<State>) -> Result<()> {
    let started = gpki_pki::time::now();
    for (i, auth) in state.authorities.iter().enumerate() {
        let seen = *state.marks[i].lock().expect("mark");
        let now_mark = state.store.status_mark(auth.id).await?;
        let mut next = seen;
        if seen.max_id == 0 && seen.revocation_seq == 0 {
            // First load: every row carries its current status already.
            next.revocation_seq = now_mark.revocation_seq;
        }
        if now_mark.max_id > seen.max_id {
            loop {
                let rows = state.store.status_page(auth.id, next.max_id, PAGE).await?;
                let Some(last) = rows.last() else { break };
                next.max_id = last.id;
                apply(state, auth, rows, started).await?;
            }
        }
        if now_mark.revocation_seq > next.revocation_seq {
            let rows = state
                .store
                .status_changes(auth.id, next.revocation_seq)
                .await?;
            if let Some(seq) = rows.iter().filter_map(|r| r.revocation_seq).max() {
                next.revocation_seq = next.revocation_seq.max(seq);
            }
            apply(state, auth, rows, started).await?;
        }
        *state.marks[i].lock().expect("mark") = next;
        state
            .metrics
            .cache_entries
            .with_label_values(&[&auth.name])
            .set(auth.entries.len() as i64);
    }
    state
        .last_sync
        .store(started, std::sync::atomic::Ordering::Relaxed);
    state.syncs.fetch_add(1, Ordering::Relaxed);
    state.metrics.last_sync.set(started);
    Ok(())
}

/// Stores the status of `rows` and, when pre-signing, signs their responses,
/// across all cores for large batches.
async fn apply(
    state: &Arc<State>,
    auth: &Arc<Authority>,
    rows: Vec<StatusRow>,
    at: i64,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let state2 = state.clone();
    let auth2 = auth.clone();
    tokio::task::spawn_blocking(move || {
        let items: Vec<Item> = rows
            .iter()
            .filter_map(|r| {
                Some((
                    authority::serial_bytes(&r.serial)?,
                    authority::state_of(r),
                    authority::version_of(r),
                ))
            })
            .collect();
        sign_into(&state2, &auth2, items, at)
    })
    .await
    .map_err(|e| gpki_pki::Error::internal(format!("signing task: {e}")))?
}

/// A serial, its state and the state's version.
type Item = (Vec<u8>, crate::CertState, i64);

/// Signs (when pre-signing) and stores entries for `items`, in parallel. An item
/// older than what the map holds is dropped (`Authority::put`).
fn sign_into(state: &State, auth: &Authority, items: Vec<Item>, at: i64) -> Result<()> {
    let responder = auth.responder();
    let next_update = (at + state.validity()).min(responder.not_after);
    let presign = state.config.presign;
    let work = |chunk: &[Item]| -> Result<()> {
        for (serial, st, version) in chunk {
            let presigned = if presign {
                Some(auth.presign(&responder, serial, *st, at, next_update)?)
            } else {
                None
            };
            auth.put(
                serial.clone(),
                Arc::new(Entry {
                    state: *st,
                    version: *version,
                    presigned,
                }),
            );
        }
        Ok(())
    };
    if presign {
        let oldest = auth.oldest.fetch_min(at, Ordering::Relaxed).min(at);
        state
            .metrics
            .oldest_presigned
            .with_label_values(&[&auth.name])
            .set(oldest);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !presign || items.len() < 256 || threads == 1 {
        return work(&items);
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(move || work(c)))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(gpki_pki::Error::internal("signing thread panicked")))
        })
    })
}

/// Signs again every pre-signed response older than `refresh_after` (its status as
/// of the sync that just succeeded).
async fn refresh(state: &Arc<State>) -> Result<()> {
    if !state.config.presign {
        return Ok(());
    }
    let now = state.last_sync();
    let cutoff = now - state.config.refresh_after();
    for auth in &state.authorities {
        if auth.oldest.load(Ordering::Relaxed) > cutoff
            && !auth.needs_signing.swap(false, Ordering::Relaxed)
        {
            continue;
        }
        let stale: Vec<Item> = auth
            .entries
            .iter()
            .filter(|e| e.presigned.as_ref().is_none_or(|p| p.this_update <= cutoff))
            .map(|e| (e.key().clone(), e.state, e.version))
            .collect();
        if !stale.is_empty() {
            tracing::info!(ca = %auth.name, count = stale.len(), "refreshing pre-signed responses");
            let (state2, auth2) = (state.clone(), auth.clone());
            tokio::task::spawn_blocking(move || sign_into(&state2, &auth2, stale, now))
                .await
                .map_err(|e| gpki_pki::Error::internal(format!("signing task: {e}")))??;
        }
        let oldest = auth
            .entries
            .iter()
            .filter_map(|e| e.presigned.as_ref().map(|p| p.this_update))
            .min()
            .unwrap_or(i64::MAX);
        auth.oldest.store(oldest, Ordering::Relaxed);
        state
            .metrics
            .oldest_presigned
            .with_label_values(&[&auth.name])
            .set(oldest);
    }
    Ok(())
}

/// What a responder's certificate and key files look like on disk: a rename or a
/// rewrite of either changes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileStamp(Vec<Option<(u64, u64, std::time::SystemTime)>>);

impl FileStamp {
    pub fn of(ca: &crate::CaConfig) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp(
            [&ca.cert, &ca.key]
                .iter()
                .map(|p| {
                    let m = std::fs::metadata(p).ok()?;
                    Some((m.ino(), m.len(), m.modified().ok()?))
                })
                .collect(),
        )
    }
}

/// Picks up a new responder certificate and key for every CA whose files changed
/// (or every CA, with `force`: SIGHUP). A pair that does not load (a half-written
/// renewal, a foreign certificate) is logged and the current one kept: a reload
/// never leaves a CA without a responder. Also warns of a certificate near expiry.
pub fn reload_if_changed(state: &State, force: bool) {
    let now = gpki_pki::time::now();
    for (i, auth) in state.authorities.iter().enumerate() {
        let ca = &state.config.cas[i];
        let stamp = FileStamp::of(ca);
        let changed = *state.files[i].lock().expect("file stamp") != stamp;
        if changed || force {
            // The stamp is kept only once the files load: a pair that failed (half
            // written, a permission being fixed) is tried again on the next poll.
            match crate::load_responder(ca, &auth.ca_cert_der, &state.key_pass) {
                Ok(new) => {
                    *state.files[i].lock().expect("file stamp") = stamp;
                    if new.cert_der != auth.responder().cert_der {
                        tracing::info!(ca = %auth.name, not_after = new.not_after, "new responder certificate loaded");
                        swap_responder(auth, new);
                    }
                }
                Err(e) => {
                    tracing::error!(ca = %auth.name, error = %e, "new responder files not loaded; keeping the current certificate")
                }
            }
        }
        let current = auth.responder();
        if current.not_after - now < 7 * 86_400 {
            tracing::warn!(ca = %auth.name, "responder certificate expires within 7 days: run `gpki ocsp renew-signers`");
        }
    }
}

/// Puts `new` in force for `auth`. Pre-signed responses carry the old certificate,
/// so they are dropped and signed again with the new one; until then answers are
/// signed live, never missed.
fn swap_responder(auth: &Authority, new: ResponderKey) {
    *auth.responder.write().expect("responder lock") = Arc::new(new);
    for mut e in auth.entries.iter_mut() {
        let (state, version) = (e.state, e.version);
        *e.value_mut() = Arc::new(Entry {
            state,
            version,
            presigned: None,
        });
    }
    auth.needs_signing.store(true, Ordering::Relaxed);
}
