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
