//! The services under hostile clients (issue 9.10, 9.11): idle and slowloris
//! connections are closed on a timer, a connection cap holds, and a client that
//! sends a body far over the limit reads the 413 instead of a reset.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{require, Backend, Env, Responder};

fn setup(env: &Env) {
    env.hierarchy();
    env.issue_official("a.pem");
    env.ok(&["ocsp", "issue-signer", "--ca", "mois"]);
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// `openssl ocsp` for a.pem; panics unless the answer verifies and says good.
fn real_client(env: &Env, url: &str) -> Duration {
    let start = Instant::now();
    let out = env.openssl_ok(&[
        "ocsp",
        "-issuer",
        "mois.pem",
        "-CAfile",
        "root.pem",
        "-url",
        &format!("{url}/ocsp"),
        "-cert",
        "a.pem",
        "-timeout",
        "20",
    ]);
    assert!(
        out.contains("Response verify OK") && out.contains("a.pem: good"),
        "{out}"
    );
    start.elapsed()
}

/// Whether the server has closed `s`: a read returns end of file or a reset
/// within `wait`, rather than timing out.
fn closed_by_server(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // hyper may answer a half-sent head with 408 before closing.
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_and_slowloris_connections_do_not_stop_a_real_client() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("openssl") {
        return;
    }
    setup(&env);
    let r = Responder::start(
        &env,
        "limits",
        &env.store,
        &["mois"],
        "[http]\nheader_timeout_ms = 2000\n",
    );
    let port = port_of(&r.url);
    // 1,000 connections: half say nothing, half send a request head one line at a
    // time and never finish it.
    let mut held = Vec::new();
    for i in 0..1000 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        if i % 2 == 1 {
            s.write_all(b"POST /ocsp HTTP/1.1\r\nHost: x\r\n").unwrap();
        }
        held.push(s);
    }
    // A relying party still gets its answer, promptly.
    let took = real_client(&env, &r.url);
    assert!(took < Duration::from_secs(10), "answer took {took:?}");
    // Past the header timeout, every one of them has been closed by the server.
    std::thread::sleep(Duration::from_millis(2500));
    let mut still_open = 0;
    for s in held.iter_mut() {
        if !closed_by_server(s, Duration::from_millis(200)) {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "connections the server kept past its header timeout"
    );
    real_client(&env, &r.url);
    drop(r);

    // At the connection cap, new clients wait in the backlog: with 20 idle
    // connections holding all 20 slots (and a header timeout longer than the test),
    // a real client gets nothing; once they go, it gets its answer.
    let r = Responder::start(
        &env,
        "capped",
        &env.store,
        &["mois"],
        "[http]\nmax_connections = 20\nheader_timeout_ms = 60000\n",
    );
    // The start-up health check used one slot and closes when curl exits.
    std::thread::sleep(Duration::from_millis(300));
    let port = port_of(&r.url);
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let health = |max: &str| {
        std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                max,
            ])
            .arg(format!("{}/healthz", r.url))
            .output()
            .unwrap()
    };
    let blocked = health("2");
    assert_eq!(
        String::from_utf8_lossy(&blocked.stdout),
        "000",
        "answered past the cap"
    );
    drop(idle);
    let served = health("10");
    assert_eq!(String::from_utf8_lossy(&served.stdout), "200");
}

// A client that pipelines requests and never reads the replies stalls hyper's
// writes, where no timer of hyper's runs. The connection is dropped once it makes
// no progress for both timeouts together, and its slot goes to the next client.
#[test]
fn a_client_that_stops_reading_loses_its_connection() {
    let env = Env::new(Backend::Sqlite).unwrap();
    setup(&env);
    let r = Responder::start(
        &env,
        "stall",
        &env.store,
        &["mois"],
        "[http]\nmax_connections = 1\nheader_timeout_ms = 1000\nbody_timeout_ms = 1000\n",
    );
    std::thread::sleep(Duration::from_millis(300));
    let port = port_of(&r.url);
    let mut greedy = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Enough pipelined requests to fill both socket buffers with replies.
    let one = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    greedy
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for _ in 0..20_000 {
        if greedy.write_all(one).is_err() {
            break;
        }
    }
    let started = Instant::now();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .arg(format!("{}/healthz", r.url))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "the stalled connection kept the only slot"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    drop(greedy);
}

/// Python's urllib posting 1 MiB to `url` `tries` times; the number of 413
/// replies it read, and what else happened.
fn urllib_413s(url: &str, tries: u32) -> (u32, String) {
    let script = r#"
import sys, urllib.request, urllib.error
url, tries = sys.argv[1], int(sys.argv[2])
got, other = 0, []
for _ in range(tries):
    req = urllib.request.Request(url, data=b"\0" * (1 << 20), headers={"Content-Type": "application/octet-stream"})
    try:
        urllib.request.urlopen(req, timeout=20)
        other.append("accepted")
    except urllib.error.HTTPError as e:
        if e.code == 413:
            got += 1
        else:
            other.append(str(e.code))
    except Exception as e:
        other.append(repr(e))
print(got)
print(sorted(set(other)))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, url, &tries.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let got = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("python: {text}{}", String::from_utf8_lossy(&out.stderr)));
    (got, lines.collect::<Vec<_>>().join(" "))
}

#[test]
fn oversized_bodies_get_a_readable_413_from_both_services() {
    let env = Env::new(Backend::Sqlite).unwrap();
    if !require("python3") {
        return;
    }
    setup(&env);
    let r = Responder::start(&env, "big", &env.store, &["mois"], "");
    let (got, other) = urllib_413s(&format!("{}/ocsp", r.url), 40);
    assert_eq!(got, 40, "OCSP: {other}");
    drop(r);

    env.ok(&[
        "cert",
        "issue",
        "--ca",
        "mois",
        "--profile",
        "tsa",
        "--subject",
        "CN=GPKI TSA, OU=GPKI, O=Government of Korea, C=KR",
        "--generate-key",
        "--key-out",
        "tsa.key",
        "--out",
        "tsa.pem",
    ]);
    let tsa = crate::support::Tsa::start(&env, "big", &env.store, "tsa.pem", "tsa.key", "");
    let (got, other) = urllib_413s(&format!("{}/", tsa.url), 40);
    assert_eq!(got, 40, "TSA: {other}");
}
