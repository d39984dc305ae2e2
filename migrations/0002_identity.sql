-- Identity: projects, members and roles, API keys, project signing keys, documents, audit log.

CREATE TABLE projects (
  id          TEXT PRIMARY KEY,              -- prj_<hex>
  name        TEXT NOT NULL,
  created_at  INTEGER NOT NULL,              -- unix ms
  deleted_at  INTEGER                        -- set when deleted; tokens stop working
);

CREATE TABLE members (
  project_id  TEXT NOT NULL REFERENCES projects(id),
  sub         TEXT NOT NULL,                 -- the user id of the team's own auth system
  role        TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'commenter', 'viewer')),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (project_id, sub)
);

CREATE TABLE api_keys (
  id            TEXT PRIMARY KEY,            -- key_<hex>; the secret is never stored
  project_id    TEXT NOT NULL REFERENCES projects(id),
  name          TEXT NOT NULL,
  role          TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'commenter', 'viewer')),
  secret_hash   TEXT NOT NULL,               -- SHA-256 of the secret, hex
  created_at    INTEGER NOT NULL,
  last_used_at  INTEGER,
  revoked_at    INTEGER
);
CREATE INDEX api_keys_by_project ON api_keys (project_id);

CREATE TABLE signing_keys (
  kid          TEXT PRIMARY KEY,             -- the JWT `kid` header of tokens it verifies
  project_id   TEXT NOT NULL REFERENCES projects(id),
  alg          TEXT NOT NULL CHECK (alg IN ('EdDSA', 'ES256')),
  public_key   TEXT NOT NULL,                -- PEM
  created_at   INTEGER NOT NULL,
  revoked_at   INTEGER
);
CREATE INDEX signing_keys_by_project ON signing_keys (project_id);

CREATE TABLE documents (
  project_id  TEXT NOT NULL REFERENCES projects(id),
  name        TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  created_by  TEXT NOT NULL,                 -- key id, user sub or 'admin'
  deleted_at  INTEGER,
  PRIMARY KEY (project_id, name)
);

CREATE TABLE audit_log (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id  TEXT,
  at          INTEGER NOT NULL,              -- unix ms
  actor       TEXT NOT NULL,                 -- 'admin', a key id, or 'user:<sub>'
  action      TEXT NOT NULL,                 -- e.g. member.added, key.revoked
  target      TEXT,
  detail      TEXT                           -- JSON
);
CREATE INDEX audit_by_project ON audit_log (project_id, id);

UPDATE tandemx_meta SET value = '2' WHERE key = 'schema';
