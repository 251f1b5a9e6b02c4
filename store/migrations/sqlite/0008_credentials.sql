-- Mobile credentials: the status lists (IETF OAuth Token Status List) and a record of
-- each credential issued. No holder private key and no presentation is ever stored:
-- the holder's key appears only as its RFC 7638 thumbprint.
CREATE TABLE status_lists (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    uri         TEXT NOT NULL UNIQUE,
    bits        INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    used        INTEGER NOT NULL DEFAULT 0,
    -- Bumped by every change of an entry's status; a served list follows it.
    status_seq  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
CREATE TABLE credentials (
    id            INTEGER PRIMARY KEY,
    list_id       INTEGER NOT NULL REFERENCES status_lists(id),
    idx           INTEGER NOT NULL,
    format        TEXT NOT NULL,
    doc_type      TEXT NOT NULL,
    subject       TEXT NOT NULL,
    holder_jkt    TEXT NOT NULL,
    signer_serial TEXT NOT NULL,
    digest        TEXT,
    issued_at     INTEGER NOT NULL,
    valid_until   INTEGER NOT NULL,
    status        TEXT NOT NULL,
    revoked_at    INTEGER,
    reason        TEXT,
    replaced_by   INTEGER REFERENCES credentials(id),
    status_seq    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (list_id, idx)
);
CREATE INDEX credentials_by_subject ON credentials (subject, status);
CREATE INDEX credentials_by_list_seq ON credentials (list_id, status_seq);
