-- A CA is online (its key in the online CA service) or offline (its key only on
-- the offline machine; a root always). Fixed when the CA is made: the online CA
-- service refuses every operation for an offline CA before it opens anything.
ALTER TABLE authorities ADD COLUMN offline BIGINT NOT NULL DEFAULT 0;
UPDATE authorities SET offline = 1 WHERE parent_id IS NULL OR parent_id = id;
