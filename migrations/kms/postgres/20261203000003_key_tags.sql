-- User tags of keys (kms-api.md §3.2): one value per tag key and key, the
-- same shape as csms's secret_tags, so the two share their SQL
-- (common::tags).
CREATE TABLE key_tags (
    key_id    TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
);
