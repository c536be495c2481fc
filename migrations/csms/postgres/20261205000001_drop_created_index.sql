-- No query reads secrets by (project, creation time) any more (list-secrets
-- pages by name on the (project_id, name) unique index). The index cost
-- every insert a write, and on a table not yet analysed it tied with the
-- unique index in the planner's costs: statements prepared while the table
-- was empty kept a plan that scanned the whole project through it to find
-- one name (issue #16).
DROP INDEX secrets_project_created_idx;
