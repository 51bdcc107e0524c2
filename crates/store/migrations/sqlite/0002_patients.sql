-- Patients: full registration data, and search keys for every keyed record.
-- Multi-valued parts (phones, contacts, alerts, identifiers) are JSON text;
-- what is searched by is in search_keys.

ALTER TABLE patients ADD COLUMN suffix TEXT;
ALTER TABLE patients ADD COLUMN preferred_name TEXT;
ALTER TABLE patients ADD COLUMN gender_identity TEXT;
ALTER TABLE patients ADD COLUMN pronouns TEXT;
ALTER TABLE patients ADD COLUMN interpreter_needed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE patients ADD COLUMN preferred_contact TEXT;
ALTER TABLE patients ADD COLUMN phones_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE patients ADD COLUMN contacts_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE patients ADD COLUMN alerts_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE patients ADD COLUMN identifiers_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE patients ADD COLUMN active BIGINT NOT NULL DEFAULT 1;
ALTER TABLE patients ADD COLUMN replaced_by TEXT;
ALTER TABLE patients DROP COLUMN phone;

-- Keys under which a record is found: folded name parts, dates of birth,
-- phone digits, emails, identifiers and duplicate-detection blocking keys.
-- The primary key is the index every lookup runs on.
CREATE TABLE search_keys (
    org_id      TEXT NOT NULL,
    record_type TEXT NOT NULL,
    key         TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    PRIMARY KEY (org_id, record_type, key, record_id)
) WITHOUT ROWID;
