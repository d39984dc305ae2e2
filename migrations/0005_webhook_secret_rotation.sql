-- Webhook secret rotation: after a rotation the replaced secret keeps signing deliveries, beside
-- the new one, until previous_secret_expires_at (the grace period, docs/api.md), so receivers
-- switch secrets without losing events. Columns are added; nothing is dropped or rewritten.

ALTER TABLE webhooks ADD COLUMN previous_secret TEXT;              -- whsec_<base64>, or NULL
ALTER TABLE webhooks ADD COLUMN previous_secret_expires_at INTEGER; -- unix ms; NULL with no previous secret
ALTER TABLE webhooks ADD COLUMN secret_rotated_at INTEGER;         -- unix ms of the last rotation

UPDATE tandemx_meta SET value = '5' WHERE key = 'schema';
