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
