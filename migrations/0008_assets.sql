-- Assets: a project's library of files in R2 (docs/assets.md). Each stored object is a blob,
-- one per (project, SHA-256): every version of every asset with the same bytes shares it.
-- Assets have versions, tags and a licence; deleted assets wait in the trash. Multipart
-- uploads and their parts are tracked here so that a client can resume one. Documents'
-- references to assets are recorded by their rooms.

-- Per project; NULL: the server's defaults (ASSET_* in wrangler.toml).
ALTER TABLE projects ADD COLUMN asset_quota_bytes INTEGER;
ALTER TABLE projects ADD COLUMN asset_max_file_bytes INTEGER;
ALTER TABLE projects ADD COLUMN asset_trash_days INTEGER;

CREATE TABLE asset_blobs (
  project_id    TEXT NOT NULL REFERENCES projects(id),
  sha256        TEXT NOT NULL,               -- 64 lowercase hex digits
  r2_key        TEXT NOT NULL,
  size          INTEGER NOT NULL,
  content_type  TEXT NOT NULL,               -- as first uploaded (checked against the bytes)
  sniffed       TEXT,                        -- what the first bytes show, if anything
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (project_id, sha256)
);

CREATE TABLE assets (
  project_id      TEXT NOT NULL REFERENCES projects(id),
  id              TEXT NOT NULL,             -- ast_ + 20 hex digits
  name            TEXT NOT NULL,             -- display name of the current version
  current_version INTEGER NOT NULL,
  uploader        TEXT NOT NULL,
  licence         TEXT,                      -- SPDX identifier
  licence_text    TEXT,                      -- or a custom licence
  attribution     TEXT,
  source_url      TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  deleted_at      INTEGER,                   -- in the trash since
  deleted_by      TEXT,
  PRIMARY KEY (project_id, id)
);
CREATE INDEX assets_by_name ON assets (project_id, name, id);
CREATE INDEX assets_trash ON assets (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE asset_versions (
  project_id    TEXT NOT NULL,
  asset_id      TEXT NOT NULL,
  version       INTEGER NOT NULL,            -- 1, 2, ...
  name          TEXT NOT NULL,
  content_type  TEXT NOT NULL,
  size          INTEGER NOT NULL,
  sha256        TEXT NOT NULL,
  uploader      TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (project_id, asset_id, version),
  FOREIGN KEY (project_id, asset_id) REFERENCES assets(project_id, id)
);
CREATE INDEX asset_versions_by_blob ON asset_versions (project_id, sha256);

CREATE TABLE asset_tags (
  project_id  TEXT NOT NULL,
  asset_id    TEXT NOT NULL,
  tag         TEXT NOT NULL,
  PRIMARY KEY (project_id, asset_id, tag)
);
CREATE INDEX asset_tags_by_tag ON asset_tags (project_id, tag, asset_id);

CREATE TABLE asset_uploads (
  project_id    TEXT NOT NULL REFERENCES projects(id),
  id            TEXT NOT NULL,               -- upl_ + 20 hex digits
  r2_key        TEXT NOT NULL,
  r2_upload_id  TEXT NOT NULL,
  asset_id      TEXT,                        -- a new version of this asset; NULL: a new asset
  name          TEXT NOT NULL,
  content_type  TEXT NOT NULL,
  size          INTEGER NOT NULL,
  sha256        TEXT NOT NULL,
  part_size     INTEGER NOT NULL,
  parts         INTEGER NOT NULL,
  uploader      TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  PRIMARY KEY (project_id, id)
);
CREATE INDEX asset_uploads_by_expiry ON asset_uploads (expires_at);

CREATE TABLE asset_upload_parts (
  project_id   TEXT NOT NULL,
  upload_id    TEXT NOT NULL,
  part_number  INTEGER NOT NULL,             -- 1 ..= parts
  etag         TEXT NOT NULL,
  size         INTEGER NOT NULL,
  uploaded_at  INTEGER NOT NULL,
  PRIMARY KEY (project_id, upload_id, part_number)
);

-- Which documents reference which assets (`tandemx://asset/<id>` in their content), written by
-- each document's room when it checkpoints: the whole set of a document is replaced at once.
CREATE TABLE asset_usage (
  project_id  TEXT NOT NULL,
  document    TEXT NOT NULL,
  asset_id    TEXT NOT NULL,
  refs        INTEGER NOT NULL,              -- how many references the document holds
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (project_id, document, asset_id)
);
CREATE INDEX asset_usage_by_asset ON asset_usage (project_id, asset_id, document);
