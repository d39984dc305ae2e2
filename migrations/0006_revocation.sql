-- Revocation that reaches open connections (docs/security.md).

-- A removed member is kept as a tombstone: tokens minted for them before no longer admit them,
-- and no new token is minted for them until they are added again.
ALTER TABLE members ADD COLUMN removed_at INTEGER;

-- Set while the document's room has open connections (the room keeps it right), so that a
-- revocation reaches every live room of a project without waking the idle ones.
ALTER TABLE documents ADD COLUMN live_since INTEGER;
CREATE INDEX documents_live ON documents (project_id) WHERE live_since IS NOT NULL;

-- Tokens revoked one by one (by their jti), kept until they would have expired anyway.
CREATE TABLE revoked_tokens (
  project_id  TEXT NOT NULL REFERENCES projects(id),
  jti         TEXT NOT NULL,
  expires_at  INTEGER NOT NULL,              -- unix ms; the row may go after this
  revoked_at  INTEGER NOT NULL,
  revoked_by  TEXT NOT NULL,
  PRIMARY KEY (project_id, jti)
);

UPDATE tandemx_meta SET value = '6' WHERE key = 'schema';
