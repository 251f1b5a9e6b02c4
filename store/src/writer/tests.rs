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
