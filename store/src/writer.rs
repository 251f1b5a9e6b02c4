//! Group commit. The services' hot writes (an RA's request and its decisions, the
//! CA's record-then-mark of a certificate) are jobs for one writer task per
//! store: it takes every job waiting, runs them one after another in one
//! transaction, appends their audit records with one move of the audit head, and
//! commits once for all. Each caller is answered only after that commit, so what a
//! caller is told is on disk exactly as with a transaction of its own; concurrent
//! callers share the transaction's fixed costs (BEGIN, COMMIT and its fsync, the
//! audit head) instead of queueing for them one by one.
//!
//! A job that fails rolls back the whole group: it is answered with its error and
//! the others run again as a new group, so no job sees another's failed half.
//! Jobs are therefore re-runnable (`Fn`), and each decides within the group's
//! transaction, after the jobs before it. A caller that goes away does not stop
//! its job: a job is committed or rolled back whole, never cut off.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use gpki_pki::{Error, ErrorKind, Result};
use sqlx::{AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::audit::append_many;
use crate::{db_err, AuditEvent};

/// What a job's future borrows: the group's connection.
pub(crate) type JobFuture<'c> = Pin<Box<dyn Future<Output = Result<Done>> + Send + 'c>>;

/// One write, run (perhaps more than once) on the group's connection.
type JobFn = Arc<dyn for<'c> Fn(&'c mut AnyConnection) -> JobFuture<'c> + Send + Sync>;

/// What a job made: the caller's answer and the audit records of its change.
pub(crate) struct Done {
    pub value: Box<dyn Any + Send>,
    pub audit: Vec<AuditEvent>,
}

impl Done {
    pub fn new<T: Send + 'static>(value: T, audit: Vec<AuditEvent>) -> Done {
        Done {
            value: Box::new(value),
            audit,
        }
    }
}

struct Job {
    run: JobFn,
    reply: oneshot::Sender<Result<Box<dyn Any + Send>>>,
}

/// The most jobs in one transaction: a group holds the store's write lock (on
/// SQLite, the whole database) for as long as it runs.
const GROUP_MAX: usize = 128;

#[derive(Debug)]
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer task on the current runtime.
    pub fn start(pool: AnyPool) -> Writer {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, rx));
        Writer { jobs }
    }

    /// Runs `job` in the next group and answers once that group is committed.
    pub async fn write<T: Send + 'static>(
        &self,
        job: impl for<'c> Fn(&'c mut AnyConnection) -> JobFuture<'c> + Send + Sync + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                run: Arc::new(job),
                reply,
            })
            .map_err(|_| Error::new(ErrorKind::Unavailable, "the store's writer has stopped"))?;
        let value = answer.await.map_err(|_| {
            Error::new(
                ErrorKind::Unavailable,
                "the store's writer stopped before answering",
            )
        })??;
        Ok(*value
            .downcast::<T>()
            .expect("a job answers with its caller's type"))
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        // Until a group runs without a failing job: each failure answers its job
        // and takes it out.
        while !group.is_empty() {
            group = run_group(&pool, group).await;
        }
    }
}

/// Runs `group` in one transaction. Returns the jobs to run again (after one of
/// them failed and was answered), or nothing when every job was answered.
async fn run_group(pool: &AnyPool, mut group: Vec<Job>) -> Vec<Job> {
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => return fail_all(group, db_err(e)),
    };
    let mut tx = match conn.begin().await {
        Ok(t) => t,
        Err(e) => return fail_all(group, db_err(e)),
    };
    let mut made = Vec::with_capacity(group.len());
    for (i, job) in group.iter().enumerate() {
        match (job.run)(&mut tx).await {
            Ok(done) => made.push(done),
            Err(e) => {
                drop(tx);
                let failed = group.remove(i);
                let _ = failed.reply.send(Err(e));
                return group;
            }
        }
    }
    let audit: Vec<&AuditEvent> = made.iter().flat_map(|d| d.audit.iter()).collect();
    if let Err(e) = append_many(&mut tx, &audit, gpki_pki::time::now()).await {
        return fail_all(group, e);
    }
    if let Err(e) = tx.commit().await {
        return fail_all(group, db_err(e));
    }
    for (job, done) in group.into_iter().zip(made) {
        let _ = job.reply.send(Ok(done.value));
    }
    Vec::new()
}

fn fail_all(group: Vec<Job>, e: Error) -> Vec<Job> {
    for job in group {
        let _ = job.reply.send(Err(e.clone()));
    }
    Vec::new()
}
