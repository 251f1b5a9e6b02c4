//! Test-only failpoints, one syntax for every process: `GPKI_FAILPOINT` names a
//! point and what happens there.
//!
//! - `NAME` or `NAME@N`: [`crash`] at point NAME aborts the process the first
//!   (or N-th) time it is reached, as a power cut would (invariant 1's tests).
//! - `NAME:DIR`: [`pause`] at point NAME creates `DIR/NAME.paused` and waits (at
//!   most 60 s) until `DIR/NAME.go` exists, forcing an interleaving a test could
//!   not otherwise win. A pause only delays: it cannot make a service answer
//!   anything it would not.
//!
//! Nothing happens when the variable is unset or names another point.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Longest a pause holds, so a forgotten `go` file cannot hang a process.
const PAUSE_LIMIT: Duration = Duration::from_secs(60);

/// What `GPKI_FAILPOINT` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Spec {
    /// Abort at the `nth` time `point` is reached.
    Crash { point: String, nth: usize },
    /// Pause at `point` until `dir/point.go` exists.
    Pause { point: String, dir: PathBuf },
}

impl Spec {
    fn parse(v: &str) -> Spec {
        if let Some((point, dir)) = v.split_once(':') {
            return Spec::Pause {
                point: point.to_string(),
                dir: PathBuf::from(dir),
            };
        }
        match v.split_once('@') {
            Some((point, n)) => Spec::Crash {
                point: point.to_string(),
                nth: n.parse().unwrap_or(1),
            },
            None => Spec::Crash {
                point: v.to_string(),
                nth: 1,
            },
        }
    }

    fn from_env() -> Option<Spec> {
        std::env::var("GPKI_FAILPOINT")
            .ok()
            .map(|v| Spec::parse(&v))
    }
}

/// Aborts the process at point `name` when `GPKI_FAILPOINT` asks for a crash
/// there (the N-th time it is reached with `NAME@N`).
pub fn crash(name: &str) {
    static REACHED: AtomicUsize = AtomicUsize::new(0);
    if let Some(Spec::Crash { point, nth }) = Spec::from_env() {
        if point == name && REACHED.fetch_add(1, Ordering::SeqCst) + 1 >= nth {
            eprintln!("gpki: failpoint {name} reached, aborting");
            std::process::abort();
        }
    }
}

/// Pauses at point `name` when `GPKI_FAILPOINT` asks for a pause there.
pub async fn pause(name: &str) {
    let Some(Spec::Pause { point, dir }) = Spec::from_env() else {
        return;
    };
    if point != name {
        return;
    }
    let go = dir.join(format!("{name}.go"));
    let _ = std::fs::write(dir.join(format!("{name}.paused")), b"");
    tracing::warn!(point = name, "failpoint: paused");
    let start = std::time::Instant::now();
    while !go.exists() && start.elapsed() < PAUSE_LIMIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = std::fs::remove_file(&go);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_syntax_names_a_crash_or_a_pause() {
        let crash = |point: &str, nth| Spec::Crash {
            point: point.into(),
            nth,
        };
        assert_eq!(Spec::parse("after-record"), crash("after-record", 1));
        assert_eq!(Spec::parse("after-record@31"), crash("after-record", 31));
        assert_eq!(Spec::parse("after-record@x"), crash("after-record", 1));
        assert_eq!(
            Spec::parse("ra-before-forward:/tmp/t"),
            Spec::Pause {
                point: "ra-before-forward".into(),
                dir: PathBuf::from("/tmp/t"),
            }
        );
    }
}
