-- OCSP: the responder follows status changes by revocation_seq.
CREATE INDEX certificates_by_revocation_seq ON certificates (issuer_id, revocation_seq);
