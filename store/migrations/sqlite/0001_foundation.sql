-- gpki store, SQLite. Times are Unix seconds; serials lower-case hex.
CREATE TABLE authorities (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    parent_id           INTEGER REFERENCES authorities(id),
    status              TEXT NOT NULL,
    subject             TEXT NOT NULL,
    key_type            TEXT NOT NULL,
    signature_algorithm TEXT NOT NULL,
    key_path            TEXT NOT NULL,
    key_id              BLOB,
    spki_sha1           BLOB,
    name_sha1           BLOB,
    cert_der            BLOB,
    crl_url             TEXT,
    ocsp_url            TEXT,
    ca_issuers_url      TEXT,
    revocation_seq      INTEGER NOT NULL DEFAULT 0,
    crl_seq             INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL
);
CREATE INDEX authorities_by_key_hash ON authorities (spki_sha1);

CREATE TABLE certificates (
    id              INTEGER PRIMARY KEY,
    issuer_id       INTEGER NOT NULL REFERENCES authorities(id),
    serial          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    profile         TEXT NOT NULL,
    status          TEXT NOT NULL,
    not_before      INTEGER NOT NULL,
    not_after       INTEGER NOT NULL,
    spki_sha256     TEXT NOT NULL,
    tbs             BLOB NOT NULL,
    der             BLOB,
    revoked_at      INTEGER,
    reason          INTEGER,
    invalidity_date INTEGER,
    revocation_seq  INTEGER,
    -- The DER of this certificate's CRL entry, made when its status changes, so a CRL
    -- of a million entries is one aggregate query.
    crl_entry       BLOB,
    renewed_from    INTEGER REFERENCES certificates(id),
    request_key     TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (issuer_id, serial)
);
CREATE INDEX certificates_by_status ON certificates (issuer_id, status, revocation_seq);
CREATE INDEX certificates_by_not_after ON certificates (not_after);
CREATE UNIQUE INDEX certificates_by_request_key ON certificates (issuer_id, request_key)
    WHERE request_key IS NOT NULL;

CREATE TABLE crls (
    id             INTEGER PRIMARY KEY,
    issuer_id      INTEGER NOT NULL REFERENCES authorities(id),
    crl_number     INTEGER NOT NULL,
    delta_base     INTEGER,
    revocation_seq INTEGER NOT NULL,
    this_update    INTEGER NOT NULL,
    next_update    INTEGER NOT NULL,
    entries        INTEGER NOT NULL,
    der            BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (issuer_id, crl_number)
);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
