-- Patient merges (master patient index): one row per merge of a duplicate
-- record into its survivor. `snapshot_json` holds both records as they were
-- before, what was appended to the survivor and which records moved, so
-- that undoing restores exactly. A duplicate is merged at most once at a
-- time (the partial unique index), so two leads cannot merge it twice.
CREATE TABLE patient_merges (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    survivor_id   TEXT   NOT NULL,
    duplicate_id  TEXT   NOT NULL,
    merged_at_us  BIGINT NOT NULL,
    merged_by     TEXT   NOT NULL,
    reason        TEXT,
    undone_at_us  BIGINT,
    undone_by     TEXT,
    snapshot_json TEXT   NOT NULL,
    PRIMARY KEY (org_id, id),
    CHECK (survivor_id <> duplicate_id),
    FOREIGN KEY (org_id, survivor_id) REFERENCES patients (org_id, id),
    FOREIGN KEY (org_id, duplicate_id) REFERENCES patients (org_id, id)
);
CREATE UNIQUE INDEX patient_merges_one_active
    ON patient_merges (org_id, duplicate_id) WHERE undone_at_us IS NULL;
CREATE INDEX patient_merges_survivor ON patient_merges (org_id, survivor_id);
CREATE INDEX patient_merges_duplicate ON patient_merges (org_id, duplicate_id);
