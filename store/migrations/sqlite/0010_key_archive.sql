-- Key management (KMI): an official's key-management key is made on the CA side,
-- kept here only as CMS EnvelopedData to a Key Recovery Authority's certificate, and
-- released again only with M of the KRA's N officers' signed approvals.

-- A KRA: its certificate (profile key-recovery, issued by a CA of this store; its
-- private key never on a CA host) and how many officers release a key.
CREATE TABLE kras (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    cert_id     INTEGER NOT NULL REFERENCES certificates(id),
    quorum      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

-- A KRA's recovery officers, known by their certificates.
CREATE TABLE kra_officers (
    id          INTEGER PRIMARY KEY,
    kra_id      INTEGER NOT NULL REFERENCES kras(id),
    name        TEXT NOT NULL,
    cert_id     INTEGER NOT NULL REFERENCES certificates(id),
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (kra_id, name),
    UNIQUE (kra_id, cert_id)
);

-- One archived key per km certificate, recorded before the certificate is signed;
-- pair_cert_id is the official-sign certificate issued with it.
CREATE TABLE key_archive (
    id            INTEGER PRIMARY KEY,
    cert_id       INTEGER NOT NULL UNIQUE REFERENCES certificates(id),
    pair_cert_id  INTEGER UNIQUE REFERENCES certificates(id),
    kra_id        INTEGER NOT NULL REFERENCES kras(id),
    envelope      BLOB NOT NULL,
    created_at    INTEGER NOT NULL
);

-- A recovery request: `requested` -> `released` (or `cancelled`). At most one open
-- request per archived key.
CREATE TABLE key_recoveries (
    id            INTEGER PRIMARY KEY,
    archive_id    INTEGER NOT NULL REFERENCES key_archive(id),
    nonce         TEXT NOT NULL UNIQUE,
    reason        TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    released_at   INTEGER,
    released_by   TEXT
);
CREATE UNIQUE INDEX key_recoveries_open ON key_recoveries (archive_id) WHERE status = 'requested';

-- The approvals a release used, each once: an approval is known by the SHA-256 of
-- its signature, and an officer approves a request once.
CREATE TABLE key_recovery_approvals (
    id               INTEGER PRIMARY KEY,
    recovery_id      INTEGER NOT NULL REFERENCES key_recoveries(id),
    officer_id       INTEGER NOT NULL REFERENCES kra_officers(id),
    approval_sha256  TEXT NOT NULL UNIQUE,
    approval         TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    UNIQUE (recovery_id, officer_id)
);

-- A dual enrolment (official-sign with a CA-made km key): the official's one-time
-- transport key (PEM PKCS#10) the km key is delivered to.
ALTER TABLE ra_requests ADD COLUMN km_transport TEXT;
