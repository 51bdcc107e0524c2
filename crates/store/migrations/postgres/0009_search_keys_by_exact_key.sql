-- A record's keys are now changed by their exact keys (the stored keys are
-- always those of the stored value, rebuilt when the rules change), so the
-- by-record index of 0006 only slowed every key insert: it held a second
-- copy of every key row.
DROP INDEX search_keys_by_record;
