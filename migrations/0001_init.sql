-- TandemX metadata schema, version 1.
-- Later migrations add projects, members, keys and the rest; this one records the schema
-- version, which GET /health reads to prove D1 is bound and migrated.
CREATE TABLE IF NOT EXISTS tandemx_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
INSERT INTO tandemx_meta (key, value) VALUES ('schema', '1')
  ON CONFLICT (key) DO UPDATE SET value = excluded.value;
