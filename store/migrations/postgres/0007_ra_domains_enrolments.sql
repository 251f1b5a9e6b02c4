-- An RA's DNS domains: every dNSName it asks for, and the domain of every
-- rfc822Name, falls under one of them (a JSON array, as the other lists).
ALTER TABLE ras ADD COLUMN domains TEXT NOT NULL DEFAULT '[]';
-- An operator enrolment (kind enrol) carries the operator's name and role, so the
-- administrator who approves it enrols exactly what was asked.
ALTER TABLE ra_requests ADD COLUMN enrol_name TEXT;
ALTER TABLE ra_requests ADD COLUMN enrol_admin BIGINT;
-- Operator names are unique within an RA: they name the operator in audit records.
CREATE UNIQUE INDEX ra_operators_by_name ON ra_operators (ra_id, name);
