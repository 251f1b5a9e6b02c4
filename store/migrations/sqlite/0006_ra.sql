-- Registration authorities and the clients of the CA service. RAs are data, not
-- processes: one RA service hosts many, each with its scope and its operators.
-- JSON arrays are TEXT on both backends.
CREATE TABLE service_clients (
    -- A certificate the CA service accepts from a client, and for what role
    -- (ra: an RA service; ocsp, tsa: a delegated signer renewing itself).
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    cert_id    BIGINT NOT NULL UNIQUE REFERENCES certificates(id),
    created_at BIGINT NOT NULL
);

CREATE TABLE ras (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    ca_name           TEXT NOT NULL,
    -- RFC 4514 DNs: every subject the RA asks for falls under one of them.
    subtrees          TEXT NOT NULL,
    profiles          TEXT NOT NULL,
    -- Profiles whose requests a second operator must approve.
    dual_control      TEXT NOT NULL,
    renew_window_days BIGINT NOT NULL,
    -- The service client (role ra) that may act for this RA at the CA.
    host              TEXT NOT NULL,
    status            TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);

CREATE TABLE ra_operators (
    id         INTEGER PRIMARY KEY,
    ra_id      BIGINT NOT NULL REFERENCES ras(id),
    name       TEXT NOT NULL,
    cert_id    BIGINT NOT NULL UNIQUE REFERENCES certificates(id),
    admin      BIGINT NOT NULL DEFAULT 0,
    status     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX ra_operators_by_ra ON ra_operators (ra_id, status);

CREATE TABLE ra_requests (
    id              INTEGER PRIMARY KEY,
    ra_id           BIGINT NOT NULL REFERENCES ras(id),
    -- The caller's idempotency key, and the SHA-256 of what it asked, so a replay
    -- finds the first request and a different request under the same key is refused.
    idempotency_key TEXT NOT NULL,
    body_sha256     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    profile         TEXT,
    subject         TEXT,
    csr             BLOB,
    sans            TEXT NOT NULL,
    target_cert_id  BIGINT REFERENCES certificates(id),
    reason          BIGINT,
    status          TEXT NOT NULL,
    submitted_by    BIGINT REFERENCES ra_operators(id),
    approved_by     BIGINT REFERENCES ra_operators(id),
    decided_by      BIGINT REFERENCES ra_operators(id),
    note            TEXT,
    cert_id         BIGINT REFERENCES certificates(id),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (ra_id, idempotency_key)
);
CREATE INDEX ra_requests_by_status ON ra_requests (ra_id, status, id);

CREATE TABLE identity_verifications (
    id          INTEGER PRIMARY KEY,
    request_id  BIGINT NOT NULL UNIQUE REFERENCES ra_requests(id),
    method      TEXT NOT NULL,
    document    TEXT NOT NULL,
    operator_id BIGINT NOT NULL REFERENCES ra_operators(id),
    verified_at BIGINT NOT NULL
);
