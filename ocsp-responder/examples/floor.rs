//! The benchmark floor: the services' HTTP stack (`gpki_service::serve_http`, the
//! same body limit) answering every request with a fixed body of the size of an
//! OCSP response, and doing nothing else.
//!
//!     cargo run --release -p gpki-ocsp --example floor -- 127.0.0.1:8090 961

use bytes::Bytes;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(961);
    let body = Bytes::from(vec![0x30u8; size]);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
            eprintln!("floor on {addr}, {size}-octet bodies");
            let (_keep, shutdown) = tokio::sync::watch::channel(false);
            let limits = gpki_service::HttpLimits::default();
            gpki_service::serve_http(listener, limits, shutdown, move |req| {
                let body = body.clone();
                async move {
                    let _ = gpki_service::read_body(req, 4096, limits.body_timeout()).await;
                    gpki_service::der("application/ocsp-response", body)
                }
            })
            .await
        });
}
