-- Trust hardening: a key revoked for keyCompromise (or cACompromise) is never
-- certified again; every issuance looks its SubjectPublicKeyInfo hash up.
CREATE INDEX certificates_by_spki ON certificates (spki_sha256);
