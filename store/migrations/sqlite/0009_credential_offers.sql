-- Credentials issued through an RA: the RA's offer names an official it knows (by the
-- official-sign certificate it requested for them) and carries the nonce the holder's
-- wallet signs to prove its key. `offered` -> `proven` (the RA checked the proof) ->
-- `issuing` (the CA took it) -> `issued` (credential_id). No holder private key, only
-- the key's RFC 7638 thumbprint.
CREATE TABLE credential_offers (
    id               INTEGER PRIMARY KEY,
    ra_id            INTEGER NOT NULL REFERENCES ras(id),
    idempotency_key  TEXT NOT NULL,
    body_sha256      TEXT NOT NULL,
    official_cert_id INTEGER NOT NULL REFERENCES certificates(id),
    format           TEXT NOT NULL,
    attributes       TEXT NOT NULL,
    nonce            TEXT NOT NULL UNIQUE,
    expires_at       INTEGER NOT NULL,
    status           TEXT NOT NULL,
    holder_jkt       TEXT,
    submitted_by     INTEGER NOT NULL REFERENCES ra_operators(id),
    credential_id    INTEGER REFERENCES credentials(id),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (ra_id, idempotency_key)
);
