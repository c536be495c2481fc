-- Notification records are purged after three months (issue #34): the
-- purge finds them by age across all projects.
CREATE INDEX csms_notifications_age_idx ON csms_notifications (create_ms);
