-- Conversations: the inbox (notifications), per-document notification settings, reviews and
-- their verdicts, the activity feed, and the project settings they read. Threads, comments
-- and chat live in each room's own storage, beside the document.

ALTER TABLE projects ADD COLUMN require_review INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN notification_delay_seconds INTEGER NOT NULL DEFAULT 300;

CREATE TABLE notifications (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id  TEXT NOT NULL REFERENCES projects(id),
  sub         TEXT NOT NULL,                 -- who is notified
  kind        TEXT NOT NULL CHECK (kind IN ('mention', 'reply', 'thread', 'review')),
  document    TEXT,
  thread      INTEGER,
  comment     INTEGER,
  review      INTEGER,
  actor       TEXT NOT NULL,
  excerpt     TEXT,                          -- the comment as plain text, at most 280 characters
  created_at  INTEGER NOT NULL,
  read_at     INTEGER
);
CREATE INDEX notifications_by_user ON notifications (project_id, sub, id);

CREATE TABLE subscriptions (
  project_id  TEXT NOT NULL REFERENCES projects(id),
  document    TEXT NOT NULL,
  sub         TEXT NOT NULL,
  level       TEXT NOT NULL CHECK (level IN ('all', 'replies_and_mentions', 'none')),
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (project_id, document, sub)
);

CREATE TABLE reviews (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id    TEXT NOT NULL REFERENCES projects(id),
  document      TEXT NOT NULL,               -- the branch (or the document of the version)
  version       INTEGER,                     -- NULL: the branch as it stands
  requested_by  TEXT NOT NULL,
  comment       TEXT,
  reviewers     TEXT NOT NULL,               -- JSON array of subs
  state         TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'changes_requested', 'withdrawn')),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
CREATE INDEX reviews_by_document ON reviews (project_id, document, id);

CREATE TABLE review_verdicts (
  review_id   INTEGER NOT NULL REFERENCES reviews(id),
  reviewer    TEXT NOT NULL,
  verdict     TEXT NOT NULL CHECK (verdict IN ('approved', 'changes_requested')),
  comment     TEXT,
  at          INTEGER NOT NULL,
  seq         INTEGER,                       -- the branch's log position the verdict was given at
  PRIMARY KEY (review_id, reviewer)
);

CREATE TABLE activity (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id  TEXT NOT NULL REFERENCES projects(id),
  document    TEXT,
  actor       TEXT NOT NULL,
  kind        TEXT NOT NULL,
  detail      TEXT NOT NULL,                 -- JSON
  at          INTEGER NOT NULL
);
CREATE INDEX activity_by_project ON activity (project_id, id);
CREATE INDEX activity_by_document ON activity (project_id, document, id);
