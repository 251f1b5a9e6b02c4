-- The compromised-key check looks for revoked rows of one public key. Many
-- certificates can share a key (renewals with the same key, a CSR reused), so the
-- index carries the status and reason too: the check seeks straight to revoked
-- rows instead of walking every certificate of the key.
DROP INDEX certificates_by_spki;
CREATE INDEX certificates_by_spki_status ON certificates (spki_sha256, status, reason);
