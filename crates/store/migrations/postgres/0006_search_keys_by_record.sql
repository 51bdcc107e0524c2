-- Replacing a record's search keys (every keyed update, delete and merge)
-- looks them up by record; without this index that scanned every key of the
-- organization (seconds at a million patients).
CREATE INDEX search_keys_by_record ON search_keys (org_id, record_type, record_id);
