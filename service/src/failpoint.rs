//! Test-only pauses that force an interleaving a test could not otherwise win.
//!
//! `GPKI_FAILPOINT=NAME:DIR` makes the point `NAME` create `DIR/NAME.paused` and
//! wait (at most 60 s) until `DIR/NAME.go` exists. Nothing happens when the
//! variable is unset or names another point. Unlike the CA's crash failpoint, a
//! pause cannot make a service answer anything it would not: it only delays.

use std::path::PathBuf;
use std::time::Duration;

/// Longest a pause holds, so a forgotten `go` file cannot hang a process.
const LIMIT: Duration = Duration::from_secs(60);

fn dir_for(name: &str) -> Option<PathBuf> {
    let v = std::env::var("GPKI_FAILPOINT").ok()?;
    let (point, dir) = v.split_once(':')?;
    (point == name).then(|| PathBuf::from(dir))
}

/// Pauses at point `name` when `GPKI_FAILPOINT` names it.
pub async fn pause(name: &str) {
    let Some(dir) = dir_for(name) else { return };
    let go = dir.join(format!("{name}.go"));
    let _ = std::fs::write(dir.join(format!("{name}.paused")), b"");
    tracing::warn!(point = name, "failpoint: paused");
    let start = std::time::Instant::now();
    while !go.exists() && start.elapsed() < LIMIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = std::fs::remove_file(&go);
}
