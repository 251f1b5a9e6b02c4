-- TSA: serials handed out in blocks (unique across processes and restarts) and the
-- log of every token issued, for disputes. (No index on the imprint: each token
-- would dirty a random index page per commit; a dispute scans.)
CREATE TABLE tsa_serials (
    tsa  TEXT PRIMARY KEY,
    next INTEGER NOT NULL
);
CREATE TABLE tsa_tokens (
    id        INTEGER PRIMARY KEY,
    tsa       TEXT NOT NULL,
    serial    TEXT NOT NULL,
    gen_time  INTEGER NOT NULL,
    policy    TEXT NOT NULL,
    hash_alg  TEXT NOT NULL,
    imprint   TEXT NOT NULL,
    nonce     TEXT,
    UNIQUE (tsa, serial)
);
