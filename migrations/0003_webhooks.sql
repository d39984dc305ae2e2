-- Webhook subscriptions and the log of every delivery attempt.

CREATE TABLE webhooks (
  id                    TEXT PRIMARY KEY,       -- wh_<hex>
  project_id            TEXT NOT NULL REFERENCES projects(id),
  url                   TEXT NOT NULL,
  events                TEXT NOT NULL,          -- JSON array of event filters
  secret                TEXT NOT NULL,          -- whsec_<base64>, used to sign
  description           TEXT NOT NULL DEFAULT '',
  enabled               INTEGER NOT NULL DEFAULT 1,
  consecutive_failures  INTEGER NOT NULL DEFAULT 0,
  disabled_reason       TEXT,
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL,
  deleted_at            INTEGER
);
CREATE INDEX webhooks_by_project ON webhooks (project_id);

CREATE TABLE webhook_deliveries (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  webhook_id   TEXT NOT NULL,
  message_id   TEXT NOT NULL,
  event_type   TEXT NOT NULL,
  attempt      INTEGER NOT NULL,               -- 1 for the first try
  status       INTEGER,                        -- HTTP status, null when the request failed
  error        TEXT,
  duration_ms  INTEGER NOT NULL,
  at           INTEGER NOT NULL,
  outcome      TEXT NOT NULL                   -- delivered, retrying, gave_up
);
CREATE INDEX deliveries_by_webhook ON webhook_deliveries (webhook_id, id);

UPDATE tandemx_meta SET value = '3' WHERE key = 'schema';
