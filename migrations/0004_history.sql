-- History: per-project retention, and branches (documents forked from another document).

-- Days of update log and automatic versions a room keeps; NULL: the default (30), 0: forever.
ALTER TABLE projects ADD COLUMN history_retention_days INTEGER;

CREATE TABLE branches (
  project_id    TEXT NOT NULL REFERENCES projects(id),
  name          TEXT NOT NULL,               -- the branch's own document
  parent        TEXT NOT NULL,               -- the document it was forked from
  fork_version  INTEGER,                     -- the parent's version it started from, if any
  fork_seq      INTEGER NOT NULL,            -- the parent's log position the fork holds
  base_seq      INTEGER NOT NULL,            -- the branch's log entry that holds the fork state
  created_at    INTEGER NOT NULL,
  created_by    TEXT NOT NULL,
  merged_at     INTEGER,                     -- the last merge into the parent
  merged_by     TEXT,
  merges        INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (project_id, name)
);
CREATE INDEX branches_by_parent ON branches (project_id, parent);

UPDATE tandemx_meta SET value = '4' WHERE key = 'schema';
