-- An employee number belongs to one official: the name and institution of the
-- first official-sign certificate that named it (CN=NAME(NUMBER), the institution
-- the least specific OU). A certificate claiming it for another is refused, so a
-- mobile ID, keyed on the number, belongs to one official.
CREATE TABLE official_numbers (
    employee_number TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    institution     TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- How far the binding of certificates recorded before this migration got (the
-- next certificate id after the last page bound), or -1 once done; a store
-- created with this migration has nothing to bind, and the first open marks it.
CREATE TABLE official_numbers_backfill (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    next_id BIGINT NOT NULL
);
INSERT INTO official_numbers_backfill (id, next_id) VALUES (1, 0);
