//! End-to-end tests: the real `gpki` binary, real stores (SQLite and PostgreSQL),
//! and OpenSSL and pkilint as independent oracles.

mod api;
mod bad_input;
mod batch;
mod credential_verify;
mod credentials;
mod dev_ra;
mod fuzz_corpus;
mod hardening;
mod http_limits;
mod invariants;
mod kmi;
mod lifecycle;
mod ocsp;
mod oracles;
mod ra;
pub mod support;
mod tsa;
