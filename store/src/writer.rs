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
mod queue_tests;
#[cfg(test)]
mod tests;
