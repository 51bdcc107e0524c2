-- The version of the rules each keyed record type's search keys were built
-- by. Database-wide, like the migrations table: the rules belong to the
-- build, not to an organization. A build with newer rules rebuilds the keys
-- once (Db::reindex_stale); the patients' keys so far were built by version 1.
CREATE TABLE search_key_versions (
    record_type TEXT PRIMARY KEY,
    version     BIGINT NOT NULL
);
INSERT INTO search_key_versions (record_type, version) VALUES ('Patient', 1);
