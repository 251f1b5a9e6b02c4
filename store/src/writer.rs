//! Group commit. The services' hot writes (an RA's request and its decisions, the
//! CA's record-then-mark of a certificate) are jobs for one writer task per
//! store: it takes every job waiting, runs them one after another in one
//! transaction, appends their audit records with one move of the audit head, and
//! commits once for all. Each caller is answered only after that commit, so what a
//! caller is told is on disk exactly as with a transaction of its own; concurrent
//! callers share the transaction's fixed costs (BEGIN, COMMIT and its fsync, the
//! audit head) instead of queueing for them one by one.
//!
//! When a job fails, the group is rolled back and run again with a savepoint
//! around each job: the jobs that fail again are rolled back alone, the others
//! commit. Only then is each failed job run once more in a transaction of its
//! own and answered with what that run says, so a job that failed on another's
//! uncommitted row (the same request twice at once) sees that row committed, as
//! it would have queued behind its transaction before. Jobs are therefore
//! re-runnable (`Fn`), and each decides within the group's transaction, after
//! the jobs before it. A caller that goes away does not stop its job: a job is
//! committed or rolled back whole, never cut off. Each group runs in a task of
//! its own, so a panic fails that group's callers (Unavailable) and not the
//! writer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use gpki_pki::{Error, ErrorKind, Result};
use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::audit::append_many;
use crate::{db_err, AuditEvent};

/// What a job's future borrows: the group's connection. It makes a `T`.
pub(crate) type JobFuture<'c, T> = Pin<Box<dyn Future<Output = Result<Done<T>>> + Send + 'c>>;

/// What a job made: the caller's answer and the audit records of its change.
pub(crate) struct Done<T> {
    pub value: T,
    pub audit: Vec<AuditEvent>,
}

impl<T> Done<T> {
    pub fn new(value: T, audit: Vec<AuditEvent>) -> Done<T> {
        Done { value, audit }
    }
}

/// The audit records of one run of a job; its value waits in the job.
type RunFuture<'c> = Pin<Box<dyn Future<Output = Result<Vec<AuditEvent>>> + Send + 'c>>;

/// A job of any answer type, as a group holds it: its caller's type stays inside
/// ([`Typed`]), so the answer reaches the caller as what it asked for.
trait Work: Send {
    /// Runs on the group's connection (perhaps again, on a later pass); the
    /// value made waits for the group's commit.
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> RunFuture<'c>;
    /// Answers the caller with the value of the last run: the group committed.
    fn answer(&mut self);
    /// Answers the caller with `e`.
    fn fail(&mut self, e: Error);
}

/// A job making a `T` for a caller waiting on `reply`.
struct Typed<T, F> {
    job: F,
    made: Option<T>,
    reply: Option<oneshot::Sender<Result<T>>>,
}

impl<T, F> Work for Typed<T, F>
where
    T: Send,
    F: for<'c> Fn(&'c mut AnyConnection) -> JobFuture<'c, T> + Send,
{
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> RunFuture<'c> {
        Box::pin(async move {
            let done = (self.job)(conn).await?;
            self.made = Some(done.value);
            Ok(done.audit)
        })
    }

    fn answer(&mut self) {
        let answer = self
            .made
            .take()
            .ok_or_else(|| Error::internal("a committed write made no answer"));
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(answer);
        }
    }

    fn fail(&mut self, e: Error) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Err(e));
        }
    }
}

struct Job {
    work: Box<dyn Work>,
    /// Advisory locks (PostgreSQL) the job needs, by name.
    locks: Vec<String>,
    /// Why its last run failed.
    error: Option<Error>,
}

/// The most jobs in one transaction: a group holds the store's write lock (on
/// SQLite, the whole database) for as long as it runs.
const GROUP_MAX: usize = 128;

/// The most jobs waiting for a group. Beyond it a write is refused at once
/// (Unavailable, nothing changed) instead of queueing without bound behind a
/// stalled database: callers are told to come back rather than left waiting
/// while memory grows.
const QUEUE_MAX: usize = 4096;

/// Where the writer's task runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Runs {
    /// On the runtime of the caller of [`Writer::start`]. For SQLite: each of its
    /// statements already crosses to a connection thread and back, and the
    /// machine is CPU-bound there, so a thread more only adds hand-offs (paired
    /// runs: 2,030/s on the caller's runtime, 1,740–1,770/s on a thread of its own).
    OnCaller,
    /// On a thread of its own with a one-thread runtime, so each round trip of
    /// the one writer is taken up as soon as its answer arrives instead of
    /// queueing behind the services' request handling on the shared workers.
    /// For PostgreSQL, where the writer waits on the server one statement after
    /// another and is busy all the time (four pairs: 1,228–1,305/s → 1,392–1,470/s).
    /// The thread ends, after its groups have settled, when the last handle of
    /// the writer is dropped.
    OwnThread,
}

#[derive(Debug)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    /// The runtime of the writer's own thread ([`Runs::OwnThread`]).
    home: Option<tokio::runtime::Handle>,
}

impl Writer {
    /// Starts the writer task, where `runs` says, with up to `lanes` groups
    /// running at once.
    pub fn start(pool: AnyPool, lanes: usize, runs: Runs) -> Result<Writer> {
        Writer::start_with(pool, lanes, QUEUE_MAX, runs)
    }

    /// [`Writer::start`] with at most `capacity` jobs waiting.
    fn start_with(pool: AnyPool, lanes: usize, capacity: usize, runs: Runs) -> Result<Writer> {
        let (jobs, rx) = mpsc::channel(capacity);
        let lanes = lanes.max(1);
        let home = match runs {
            Runs::OnCaller => {
                tokio::spawn(run(pool, rx, lanes));
                None
            }
            Runs::OwnThread => {
                // The runtime is made on the thread that runs it, so no error path
                // drops a runtime inside the caller's (which tokio refuses).
                let (made, handle) = std::sync::mpsc::sync_channel(1);
                std::thread::Builder::new()
                    .name("gpki-store-writer".into())
                    .spawn(move || {
                        match tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            Ok(rt) => {
                                let _ = made.send(Ok(rt.handle().clone()));
                                rt.block_on(run(pool, rx, lanes));
                            }
                            Err(e) => {
                                let _ = made.send(Err(e));
                            }
                        }
                    })
                    .map_err(|e| Error::internal(format!("the store writer's thread: {e}")))?;
                let handle = handle
                    .recv()
                    .map_err(|_| Error::internal("the store writer's thread ended at start"))?
                    .map_err(|e| Error::internal(format!("the store writer's runtime: {e}")))?;
                Some(handle)
            }
        };
        Ok(Writer { jobs, home })
    }

    /// Runs `work` where the writer runs: a connection the writer's pool opens
    /// for it then belongs to the writer's runtime, as the writer's own do, and
    /// is not left answering through the services' busy workers.
    pub async fn on_home<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        match &self.home {
            Some(home) => home.spawn(work).await.map_err(|e| {
                Error::new(ErrorKind::Unavailable, format!("the store writer: {e}"))
            })?,
            None => work.await,
        }
    }

    /// Runs `job` in the next group and answers once that group is committed. For
    /// a write that follows one already made (marking a signed certificate, moving
    /// a request the CA answered): it waits for room in the queue rather than
    /// leave the first write half done. New work comes in through [`Writer::admit`].
    pub async fn write<T: Send + 'static>(
        &self,
        job: impl for<'c> Fn(&'c mut AnyConnection) -> JobFuture<'c, T> + Send + Sync + 'static,
    ) -> Result<T> {
        self.enqueue(Vec::new(), job, false).await
    }

    /// [`Writer::write`] for new work (a request recorded, a certificate about to be
    /// signed): refused at once, Unavailable and nothing changed, when the queue is
    /// full.
    pub async fn admit<T: Send + 'static>(
        &self,
        job: impl for<'c> Fn(&'c mut AnyConnection) -> JobFuture<'c, T> + Send + Sync + 'static,
    ) -> Result<T> {
        self.enqueue(Vec::new(), job, true).await
    }

    /// [`Writer::admit`] holding the advisory locks named `locks` (PostgreSQL;
    /// SQLite's one writer needs none). A group takes every lock of its jobs
    /// before the first job runs, in one order, so groups running at once (and
    /// the batch, which takes them in the same order) cannot deadlock on them.
    pub async fn admit_locked<T: Send + 'static>(
        &self,
        locks: Vec<String>,
        job: impl for<'c> Fn(&'c mut AnyConnection) -> JobFuture<'c, T> + Send + Sync + 'static,
    ) -> Result<T> {
        self.enqueue(locks, job, true).await
    }

    async fn enqueue<T: Send + 'static>(
        &self,
        locks: Vec<String>,
        job: impl for<'c> Fn(&'c mut AnyConnection) -> JobFuture<'c, T> + Send + Sync + 'static,
        refuse_when_full: bool,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work: Box::new(Typed {
                job,
                made: None,
                reply: Some(reply),
            }),
            locks,
            error: None,
        };
        let stopped = || Error::new(ErrorKind::Unavailable, "the store's writer has stopped");
        if refuse_when_full {
            self.jobs.try_send(job).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "the store's writer has {} writes waiting: this one is refused and nothing changed; try again shortly",
                        self.jobs.max_capacity()
                    ),
                ),
                mpsc::error::TrySendError::Closed(_) => stopped(),
            })?;
        } else {
            self.jobs.send(job).await.map_err(|_| stopped())?;
        }
        answer.await.map_err(|_| {
            Error::new(
                ErrorKind::Unavailable,
                "the store's writer stopped before answering",
            )
        })?
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Job>, lane_count: usize) {
    let lanes = Arc::new(Semaphore::new(lane_count));
    while let Some(first) = rx.recv().await {
        // A group forms when a lane is free, of every job waiting by then.
        let lane = lanes
            .clone()
            .acquire_owned()
            .await
            .expect("the writer's semaphore is never closed");
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        // A panic drops the group's reply senders (its callers hear
        // Unavailable) and its lane.
        tokio::spawn(async move {
            let _lane = lane;
            let (jobs, started) = (group.len(), std::time::Instant::now());
            settle(pool, group).await;
            tracing::debug!(
                jobs,
                micros = started.elapsed().as_micros() as u64,
                "group settled"
            );
        });
    }
    // Every handle is gone. The groups still running settle before this
    // returns: on a thread of its own, the runtime ends with it and would
    // otherwise cut them off mid-transaction, unanswered.
    let _ = lanes
        .acquire_many(u32::try_from(lane_count).unwrap_or(u32::MAX))
        .await;
}

/// Runs `group` to the end: every job is answered.
async fn settle(pool: AnyPool, group: Vec<Job>) {
    let mut first = run_group(&pool, group, false).await;
    // The connection was dead (a server restart, a failover: every idle one may
    // be): it is closed as it goes back, and the group runs again on another,
    // as many times as the pool holds connections.
    let mut tries = pool.options().get_max_connections();
    while let Outcome::NotBegun(group, e) = first {
        if tries == 0 {
            fail_all(group, e);
            return;
        }
        tries -= 1;
        first = run_group(&pool, group, false).await;
    }
    let failed = match first {
        Outcome::Done => return,
        Outcome::NotBegun(group, e) => {
            fail_all(group, e);
            return;
        }
        // A lock held elsewhere (SQLite busy, PostgreSQL lock_timeout): running
        // the jobs again would wait it out once per job, so they all hear it.
        Outcome::Failed(group)
            if group
                .iter()
                .any(|j| j.error.as_ref().map(|e| e.kind) == Some(ErrorKind::Unavailable)) =>
        {
            let e = group
                .iter()
                .find_map(|j| j.error.clone())
                .expect("the failed job's error");
            fail_all(group, e);
            return;
        }
        Outcome::Failed(group) => match run_group(&pool, group, true).await {
            Outcome::Done => return,
            Outcome::Failed(failed) => failed,
            Outcome::NotBegun(group, e) => {
                fail_all(group, e);
                return;
            }
        },
    };
    for job in failed {
        match run_group(&pool, vec![job], false).await {
            // Failed alone, in a transaction of its own: that is its answer.
            Outcome::Failed(mut again) => {
                if let Some(mut job) = again.pop() {
                    let e = again_error(&job);
                    job.work.fail(e);
                }
            }
            Outcome::NotBegun(group, e) => {
                fail_all(group, e);
            }
            Outcome::Done => {}
        }
    }
}

/// The error of a job that failed alone is kept on the job by `run_group`.
fn again_error(job: &Job) -> Error {
    job.error
        .clone()
        .unwrap_or_else(|| Error::internal("a write failed without an error"))
}

enum Outcome {
    /// Every job was answered.
    Done,
    /// Without savepoints: the group was rolled back at its first failing job
    /// and nothing was answered. With savepoints: the jobs that failed, rolled
    /// back alone and not answered; the others are committed and answered.
    Failed(Vec<Job>),
    /// The transaction could not begin; nothing ran, nothing was answered.
    NotBegun(Vec<Job>, Error),
}

/// Runs `group` in one transaction, each job in a savepoint when `savepoints`.
/// A failure of the transaction itself (connection, audit append, COMMIT) is
/// every job's answer.
async fn run_group(pool: &AnyPool, group: Vec<Job>, savepoints: bool) -> Outcome {
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => return fail_all(group, db_err(e)),
    };
    let postgres = conn.backend_name().eq_ignore_ascii_case("postgresql");
    let mut tx = match conn.begin().await {
        Ok(t) => t,
        // A dead connection fails its release ping and is closed by the pool.
        Err(e) => return Outcome::NotBegun(group, db_err(e)),
    };
    // On PostgreSQL the writer's sessions carry a `lock_timeout` (Store::connect).
    if postgres {
        if let Err(e) = take_locks(&mut tx, lock_names(&group)).await {
            return fail_all(group, e);
        }
    }
    let mut made = Vec::with_capacity(group.len());
    let mut kept = Vec::with_capacity(group.len());
    let mut failed = Vec::new();
    let mut rest = group.into_iter();
    while let Some(mut job) = rest.next() {
        if savepoints {
            if let Err(e) = sqlx::query("SAVEPOINT job").execute(&mut *tx).await {
                kept.push(job);
                kept.extend(rest);
                return fail_all(kept.into_iter().chain(failed).collect(), db_err(e));
            }
        }
        match job.work.run(&mut tx).await {
            Ok(done) => {
                if savepoints {
                    if let Err(e) = sqlx::query("RELEASE SAVEPOINT job").execute(&mut *tx).await {
                        kept.push(job);
                        kept.extend(rest);
                        return fail_all(kept.into_iter().chain(failed).collect(), db_err(e));
                    }
                }
                made.push(done);
                kept.push(job);
            }
            Err(e) if savepoints => {
                if let Err(e) = sqlx::query("ROLLBACK TO SAVEPOINT job")
                    .execute(&mut *tx)
                    .await
                {
                    kept.push(job);
                    kept.extend(rest);
                    return fail_all(kept.into_iter().chain(failed).collect(), db_err(e));
                }
                job.error = Some(e);
                failed.push(job);
            }
            Err(e) => {
                // Rolled back now, so the next pass does not wait on its locks.
                let _ = tx.rollback().await;
                job.error = Some(e);
                kept.push(job);
                kept.extend(rest);
                return Outcome::Failed(kept);
            }
        }
    }
    let audit: Vec<&AuditEvent> = made.iter().flatten().collect();
    if let Err(e) = append_many(&mut tx, &audit, gpki_pki::time::now()).await {
        return fail_all(kept.into_iter().chain(failed).collect(), e);
    }
    if let Err(e) = tx.commit().await {
        return fail_all(kept.into_iter().chain(failed).collect(), db_err(e));
    }
    for mut job in kept {
        job.work.answer();
    }
    if failed.is_empty() {
        Outcome::Done
    } else {
        Outcome::Failed(failed)
    }
}

/// The advisory locks of `group`'s jobs, sorted: every holder of more than one
/// takes them in this order (a VALUES list is scanned in its order).
fn lock_names(group: &[Job]) -> Vec<String> {
    let mut names: Vec<String> = group.iter().flat_map(|j| j.locks.clone()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Takes the advisory locks `names`, in their order.
async fn take_locks(conn: &mut AnyConnection, names: Vec<String>) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = (1..=names.len()).map(|i| format!("(${i})")).collect();
    let sql = format!(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM (VALUES {}) AS v(k)",
        values.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for n in names {
        q = q.bind(n);
    }
    q.execute(&mut *conn).await.map_err(db_err)?;
    Ok(())
}

fn fail_all(group: Vec<Job>, e: Error) -> Outcome {
    for mut job in group {
        job.work.fail(e.clone());
    }
    Outcome::Done
}

#[cfg(test)]
mod tests {
    use crate::{NewCertificate, NewRa, NewRequest, Store, Transition};
    use gpki_pki::ErrorKind;

    use crate::test_support::{ca, drop_pg, event, pg_store, store};

    async fn ra(store: &Store) -> crate::RaRecord {
        store
            .create_ra(
                &NewRa {
                    name: "ra".into(),
                    ca_name: "ca".into(),
                    subtrees: vec![],
                    profiles: vec![],
                    dual_control: vec![],
                    renew_window_days: 30,
                    host: "host".into(),
                    domains: vec![],
                },
                &event(),
            )
            .await
            .unwrap()
    }

    /// An issue request under `key`, submitted, or approved as it is recorded.
    fn request(ra_id: i64, key: &str, approved: bool) -> NewRequest {
        NewRequest {
            approved,
            ..NewRequest::new(ra_id, key, "issue", "b".into())
        }
    }

    /// Jobs that land in one group: a failing one (a serial recorded twice) is
    /// answered with its own error, and every other is committed; the audit chain
    /// is whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_fails_alone_and_the_group_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let ca = ca(&store).await;
        let new = |i: usize| NewCertificate {
            issuer_id: ca.id,
            // Rows 0 and 1 share a serial.
            serial: format!("{:032x}", i.max(1)),
            subject: format!("CN=n{i}"),
            profile: "p".into(),
            not_before: 0,
            not_after: 1,
            spki_sha256: format!("{i:064x}"),
            tbs: vec![i as u8],
            renewed_from: None,
            request_key: None,
        };
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (s, c) = (store.clone(), new(i));
            tasks.push(tokio::spawn(async move { s.record_tbs(&c).await }));
        }
        let mut ok = Vec::new();
        let mut refused = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(id) => ok.push(id),
                Err(e) => refused.push(e),
            }
        }
        assert_eq!(ok.len(), 39, "{refused:?}");
        assert_eq!(refused.len(), 1);
        assert_eq!(
            refused[0].kind,
            ErrorKind::AlreadyExists,
            "{:?}",
            refused[0]
        );
        for id in ok {
            store.certificate_by_id(id).await.unwrap();
        }
        assert!(store.audit_verify().await.unwrap().intact());
    }

    /// The same request twice at once (a client's retry): both callers get the
    /// one request, one as created and the other as its replay, though the
    /// second failed on the first's row before that row was committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_same_request_twice_at_once_is_one_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let ra = ra(&store).await;
        for round in 0..20 {
            let new = request(ra.id, &format!("k{round}"), false);
            let audit = event();
            let (a, b) = tokio::join!(
                store.submit_request(&new, None, &audit),
                store.submit_request(&new, None, &audit)
            );
            let ((ra_, ca_), (rb, cb)) = (a.unwrap(), b.unwrap());
            assert_eq!(ra_.id, rb.id);
            assert!(ca_ != cb, "one created, one replayed");
        }
        assert!(store.audit_verify().await.unwrap().intact());
    }

    /// A request becomes issued only with a certificate the CA made for it: a
    /// serial the store holds under another request key is refused, and the
    /// request stays as it was.
    #[tokio::test]
    async fn an_issued_request_names_its_own_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let ca = ca(&store).await;
        let serial = format!("{:032x}", 7);
        let id = store
            .record_tbs(&NewCertificate {
                issuer_id: ca.id,
                serial: serial.clone(),
                subject: "CN=someone".into(),
                profile: "p".into(),
                not_before: 0,
                not_after: 1,
                spki_sha256: format!("{:064x}", 7),
                tbs: vec![7],
                renewed_from: None,
                request_key: Some("ra:other-request".into()),
            })
            .await
            .unwrap();
        store
            .mark_issued(id, &[0x30, 0x00], &event())
            .await
            .unwrap();
        let ra = ra(&store).await;
        let (r, _) = store
            .submit_request(&request(ra.id, "k", true), None, &event())
            .await
            .unwrap();
        assert_eq!(r.status, "approved");
        let issued = |key: &str| Transition {
            from: &["approved"],
            to: "issued",
            certificate: Some((ca.id, serial.clone(), Some(key.to_string()))),
            ..Default::default()
        };
        let e = store
            .transition(&r, &issued("ra:this-request"), &event())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal, "{e}");
        assert!(e.detail.contains(&serial), "{e}");
        let still = store.request(r.id).await.unwrap();
        assert_eq!((still.status.as_str(), still.cert_id), ("approved", None));
        let done = store
            .transition(&r, &issued("ra:other-request"), &event())
            .await
            .unwrap();
        assert_eq!((done.status.as_str(), done.cert_id), ("issued", Some(id)));
        assert!(store.audit_verify().await.unwrap().intact());
    }

    /// On PostgreSQL a group that meets a lock held elsewhere (here the audit
    /// head, in another session's open transaction) fails after the busy
    /// timeout with Unavailable, and changes nothing; every caller of the group
    /// hears it at once, and the next group, with the lock gone, commits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lock_held_elsewhere_fails_the_group_unavailable_postgres() {
        use sqlx::{Connection, Executor};
        let Some((store, url)) = pg_store().await else {
            return;
        };
        let ra = ra(&store).await;
        let before = store.counts().await.unwrap();
        let mut holder = sqlx::AnyConnection::connect(&url).await.unwrap();
        holder.execute("BEGIN").await.unwrap();
        holder
            .execute("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
            .await
            .unwrap();
        let submit = |key: &'static str| {
            let store = store.clone();
            let new = request(ra.id, key, false);
            async move { store.submit_request(&new, None, &event()).await }
        };
        let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            tokio::join!(submit("a"), submit("b"))
        })
        .await
        .expect("the writer waits for the lock no longer than its timeout");
        for e in [a.unwrap_err(), b.unwrap_err()] {
            assert_eq!(e.kind, ErrorKind::Unavailable, "{e:?}");
            assert!(e.detail.contains("lock timeout"), "{}", e.detail);
        }
        assert_eq!(store.counts().await.unwrap(), before);
        for key in ["a", "b"] {
            assert!(store.request_by_key(ra.id, key).await.unwrap().is_none());
        }
        holder.execute("ROLLBACK").await.unwrap();
        let (r, fresh) = submit("a").await.unwrap();
        assert!(fresh && r.idempotency_key == "a");
        assert_eq!(store.counts().await.unwrap().audit, before.audit + 1);
        assert!(store.audit_verify().await.unwrap().intact());
        store.close().await;
        drop_pg(&url).await;
    }

    /// On PostgreSQL the writer runs on its own thread, and the health check
    /// reaches the writer's connections from there once it has any.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_postgres_writer_runs_and_is_pinged_on_its_own_thread_postgres() {
        let Some((store, url)) = pg_store().await else {
            return;
        };
        let ra = ra(&store).await;
        store
            .submit_request(&request(ra.id, "a", false), None, &event())
            .await
            .unwrap();
        assert!(
            store.writer_pool.size() > 0,
            "the write opened the writer's pool"
        );
        let thread = store
            .writer
            .on_home(async { Ok(std::thread::current().name().map(String::from)) })
            .await
            .unwrap();
        assert_eq!(thread.as_deref(), Some("gpki-store-writer"));
        crate::ping(&store).await.unwrap();
        store.close().await;
        drop_pg(&url).await;
    }
}

#[cfg(test)]
mod queue_tests {
    use super::{Done, Runs, Writer};
    use gpki_pki::ErrorKind;

    fn insert(
        n: i64,
    ) -> impl for<'c> Fn(&'c mut sqlx::AnyConnection) -> super::JobFuture<'c, ()> + Send + Sync + 'static
    {
        move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO queued (n) VALUES ($1)")
                    .bind(n)
                    .execute(conn)
                    .await
                    .map_err(crate::db_err)?;
                Ok(Done::new((), Vec::new()))
            })
        }
    }

    /// A SQLite store with the table `queued`, and another connection holding its
    /// write lock (`BEGIN IMMEDIATE`), so a group stalls in its first insert until
    /// that connection commits.
    async fn stalled(
        dir: &tempfile::TempDir,
    ) -> (
        crate::Store,
        sqlx::AnyPool,
        sqlx::pool::PoolConnection<sqlx::Any>,
    ) {
        let store = crate::test_support::store(dir).await;
        let pool = store.pool().clone();
        sqlx::query("CREATE TABLE queued (n BIGINT)")
            .execute(&pool)
            .await
            .unwrap();
        let mut holder = pool.acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *holder)
            .await
            .unwrap();
        (store, pool, holder)
    }

    /// A writer on a thread of its own whose last handle goes while a group is
    /// still running (its caller gone too) lets that group settle before its
    /// runtime ends: the write is committed, not cut off mid-transaction.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_on_its_own_thread_settles_its_groups_before_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, pool, mut holder) = stalled(&dir).await;
        let writer =
            std::sync::Arc::new(Writer::start_with(pool.clone(), 1, 8, Runs::OwnThread).unwrap());
        let w = writer.clone();
        let caller = tokio::spawn(async move { w.write::<()>(insert(7)).await });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!caller.is_finished(), "the group waits for the lock");
        caller.abort();
        let _ = caller.await;
        drop(writer);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        sqlx::query("COMMIT").execute(&mut *holder).await.unwrap();
        drop(holder);
        let mut found = 0;
        for _ in 0..50 {
            found = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM queued WHERE n = 7")
                .fetch_one(&pool)
                .await
                .unwrap();
            if found == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            found, 1,
            "the running group was cut off when the writer ended"
        );
    }

    /// Behind a database whose write lock is held elsewhere, writes wait in a
    /// bounded queue: once it is full the next write is refused at once
    /// (Unavailable) and changes nothing, and the waiting ones commit when the
    /// lock is let go.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, pool, mut holder) = stalled(&dir).await;
        let writer =
            std::sync::Arc::new(Writer::start_with(pool.clone(), 1, 2, Runs::OnCaller).unwrap());
        // One job in the stalled group, one in the writer's hand waiting for a
        // lane, two in the queue: the fifth finds it full.
        let mut waiting = Vec::new();
        let refused = loop {
            let n = waiting.len() as i64;
            let w = writer.clone();
            let job = tokio::spawn(async move { w.admit::<()>(insert(n)).await });
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if job.is_finished() {
                break job.await.unwrap().unwrap_err();
            }
            waiting.push(job);
            assert!(waiting.len() <= 4, "the queue holds more than it should");
        };
        assert_eq!(refused.kind, ErrorKind::Unavailable, "{refused}");
        assert!(
            refused.to_string().contains("2 writes waiting"),
            "{refused}"
        );
        assert_eq!(waiting.len(), 4);
        // A follow-on write (marking what was already signed) waits for room
        // instead of being refused.
        let w = writer.clone();
        let follow_on = tokio::spawn(async move { w.write::<()>(insert(99)).await });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!follow_on.is_finished(), "a follow-on write waits");
        waiting.push(follow_on);
        sqlx::query("COMMIT").execute(&mut *holder).await.unwrap();
        drop(holder);
        for job in waiting {
            job.await.unwrap().unwrap();
        }
        let rows: Vec<i64> = sqlx::query_scalar("SELECT n FROM queued ORDER BY n")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(rows, vec![0, 1, 2, 3, 99], "the refused write left nothing");
    }
}
