-- Key rotation (issue #12): each rotation adds a row to key_materials and
-- moves keys.material_version to it; these columns hold the schedule and
-- what get-key-rotation-status reports. Existing keys keep one material
-- version and rotation off, with the documented default interval.
ALTER TABLE keys ADD COLUMN rotation_interval_days INTEGER NOT NULL DEFAULT 365;
-- Start of the current automatic period (enable, or the last automatic
-- rotation); NULL while rotation is off.
ALTER TABLE keys ADD COLUMN rotation_anchor_ms BIGINT;
ALTER TABLE keys ADD COLUMN last_rotation_ms BIGINT;
ALTER TABLE keys ADD COLUMN rotations INTEGER NOT NULL DEFAULT 0;

-- The background task's question, "which keys are due", reads only keys
-- with rotation on.
CREATE INDEX keys_rotation_due_idx ON keys (rotation_anchor_ms) WHERE rotation_enabled;
