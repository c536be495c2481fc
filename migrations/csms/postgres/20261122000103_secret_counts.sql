-- Secrets per project, split over shards (a writer picks one at random; the
-- count is the sum), maintained in the transactions that create and delete
-- secrets: the quota check reads a few rows, and concurrent creates in one
-- project share no hot row.
CREATE TABLE secret_counts (
    project_id TEXT NOT NULL,
    shard      INTEGER NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (project_id, shard)
);

INSERT INTO secret_counts (project_id, shard, n)
SELECT project_id, 0, COUNT(*) FROM secrets GROUP BY project_id;
