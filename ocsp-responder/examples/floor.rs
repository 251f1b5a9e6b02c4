//! The benchmark floor: the responder's HTTP stack (tokio, hyper HTTP/1.1 with
//! keep-alive, the same body limit) answering every request with a fixed body of
//! the size of an OCSP response, and doing nothing else.
//!
//!     cargo run --release -p gpki-ocsp --example floor -- 127.0.0.1:8090 961

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

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
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let body = body.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let body = body.clone();
                        async move {
                            let _ = Limited::new(req.into_body(), 4096).collect().await;
                            Ok::<_, Infallible>(Response::new(Full::new(body)))
                        }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
}
