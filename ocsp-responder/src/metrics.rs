//! Prometheus metrics: answers by status and path, latency, cache size and age.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Counters resolved once, so a request touches only atomics.
pub struct Metrics {
    registry: Registry,
    pub good_presigned: IntCounter,
    pub good_live: IntCounter,
    pub revoked_presigned: IntCounter,
    pub revoked_live: IntCounter,
    pub unknown: IntCounter,
    pub malformed: IntCounter,
    pub unauthorized: IntCounter,
    pub try_later: IntCounter,
    pub internal: IntCounter,
    pub refused_http: IntCounter,
    pub latency: Histogram,
    pub cache_entries: IntGaugeVec,
    pub last_sync: IntGauge,
    pub oldest_presigned: IntGaugeVec,
    pub store_up: IntGauge,
    pub crl_loads: IntCounterVec,
    pub status_list_signs: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let responses = IntCounterVec::new(
            Opts::new(
                "gpki_ocsp_responses_total",
                "OCSP answers by status and how they were made",
            ),
            &["status", "path"],
        )
        .expect("metric");
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "gpki_ocsp_request_duration_seconds",
                "Time to answer one HTTP request",
            )
            .buckets(vec![
                0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
            ]),
        )
        .expect("metric");
        let cache_entries = IntGaugeVec::new(
            Opts::new("gpki_ocsp_cache_entries", "Certificates known, by CA"),
            &["ca"],
        )
        .expect("metric");
        let oldest_presigned = IntGaugeVec::new(
            Opts::new(
                "gpki_ocsp_presigned_oldest_this_update_seconds",
                "thisUpdate (Unix time) of the oldest pre-signed response, by CA",
            ),
            &["ca"],
        )
        .expect("metric");
        let last_sync = IntGauge::new(
            "gpki_ocsp_store_last_sync_seconds",
            "Unix time the responder last read the store successfully",
        )
        .expect("metric");
        let store_up = IntGauge::new(
            "gpki_ocsp_store_up",
            "1 when the store answered the last poll",
        )
        .expect("metric");
        registry
            .register(Box::new(responses.clone()))
            .expect("register");
        registry
            .register(Box::new(latency.clone()))
            .expect("register");
        registry
            .register(Box::new(cache_entries.clone()))
            .expect("register");
        registry
            .register(Box::new(oldest_presigned.clone()))
            .expect("register");
        registry
            .register(Box::new(last_sync.clone()))
            .expect("register");
        registry
            .register(Box::new(store_up.clone()))
            .expect("register");
        let crl_loads = IntCounterVec::new(
            Opts::new(
                "gpki_ocsp_crl_loads_total",
                "CRLs read from the store into memory, by CA and kind",
            ),
            &["ca", "kind"],
        )
        .expect("metric");
        registry
            .register(Box::new(crl_loads.clone()))
            .expect("register");
        let status_list_signs = IntCounterVec::new(
            Opts::new(
                "gpki_ocsp_status_list_signs_total",
                "Status List Tokens built and signed (JWT and CWT), by list",
            ),
            &["list"],
        )
        .expect("metric");
        registry
            .register(Box::new(status_list_signs.clone()))
            .expect("register");
        let c = |s: &str, p: &str| responses.with_label_values(&[s, p]);
        Metrics {
            good_presigned: c("good", "presigned"),
            good_live: c("good", "live"),
            revoked_presigned: c("revoked", "presigned"),
            revoked_live: c("revoked", "live"),
            unknown: c("unknown", "live"),
            malformed: c("malformed_request", "error"),
            unauthorized: c("unauthorized", "error"),
            try_later: c("try_later", "error"),
            internal: c("internal_error", "error"),
            refused_http: c("refused", "http"),
            latency,
            cache_entries,
            last_sync,
            oldest_presigned,
            store_up,
            crl_loads,
            status_list_signs,
            registry,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
