-- Calls (docs/calls.md): a project's participant limit per call (2 to 8; a mesh) and whether
-- viewers and commenters may send media in calls.
ALTER TABLE projects ADD COLUMN call_max_participants INTEGER NOT NULL DEFAULT 8;
ALTER TABLE projects ADD COLUMN call_viewers_publish INTEGER NOT NULL DEFAULT 0;
