-- A task stores why a rotation failed as a reason (the proto ErrorReason's
-- name), not as Huawei's code: the code is the gateway's to spell.
ALTER TABLE csms_tasks RENAME COLUMN error_code TO error_reason;
UPDATE csms_tasks SET error_reason = CASE error_reason
    WHEN '' THEN ''
    WHEN 'CSMS.0002' THEN 'INVALID_PARAMETER'
    WHEN 'CSMS.0401' THEN 'KMS_KEY_UNUSABLE'
    ELSE 'INTERNAL'
END;
