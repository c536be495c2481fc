-- Signatures of one-shot (state-changing) requests already served, so that
-- a captured request cannot be replayed later within its 15-minute
-- validity window on any gateway replica (issue #15, finding 10). digest
-- is SHA-256 over the AK and the signature; first_ms is when it was first
-- served; rows are forgotten once the window has closed.
CREATE TABLE iam_used_signatures (
    digest BLOB PRIMARY KEY,
    first_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX iam_used_signatures_expiry ON iam_used_signatures (expires_ms);
