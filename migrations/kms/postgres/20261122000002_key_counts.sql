-- Key counts per project, spec, state and kind, maintained in the same
-- transactions that change keys: list-keys totals and the quota check read
-- a handful of rows instead of counting every key of the project. Each
-- count is split over shards (a writer picks one at random; the count is
-- the sum), so concurrent creates in one project share no hot row.
CREATE TABLE key_counts (
    project_id  TEXT NOT NULL,
    key_spec    TEXT NOT NULL,
    key_state   INTEGER NOT NULL,
    default_key BOOLEAN NOT NULL,
    shard       INTEGER NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (project_id, key_spec, key_state, default_key, shard)
);

INSERT INTO key_counts (project_id, key_spec, key_state, default_key, shard, n)
SELECT project_id, key_spec, key_state, default_key, 0, COUNT(*) FROM keys
GROUP BY project_id, key_spec, key_state, default_key;
