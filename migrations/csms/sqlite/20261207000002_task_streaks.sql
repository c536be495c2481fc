-- The scheduler asks how many of a secret's latest rotations failed in a
-- row (the third switches automatic rotation off): the latest tasks of one
-- secret, by id, without scanning the rest of its project's.
CREATE INDEX csms_tasks_secret_idx ON csms_tasks (project_id, secret_name, id);
