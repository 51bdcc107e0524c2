-- Insurance: the payer directory, patients' coverages and their card images.

-- The payers this clinic bills, each with its electronic payer ID (X12).
-- Served by FHIR as Organization (type 'pay') beside the tenant's own
-- organization, whose id is always the org_id: a payer's id never is.
CREATE TABLE payers (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL CHECK (id <> org_id),
    name          TEXT   NOT NULL,
    payer_id      TEXT   NOT NULL,
    active        BIGINT NOT NULL DEFAULT 1,
    version       BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    deleted       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id)
);
-- One live directory entry per electronic payer ID.
CREATE UNIQUE INDEX payers_payer_id ON payers (org_id, payer_id) WHERE deleted = 0;

-- A patient's insurance. `coverage_order` is 1 primary, 2 secondary,
-- 3 tertiary; the subscriber is named unless the patient is the subscriber.
CREATE TABLE coverages (
    org_id                TEXT   NOT NULL,
    id                    TEXT   NOT NULL,
    patient_id            TEXT   NOT NULL,
    payer_ref             TEXT   NOT NULL,
    plan_name             TEXT,
    member_id             TEXT   NOT NULL,
    group_number          TEXT,
    relationship          TEXT   NOT NULL
        CHECK (relationship IN ('self','spouse','child','parent','common','other','injured')),
    subscriber_given      TEXT,
    subscriber_family     TEXT,
    subscriber_birth_date TEXT,
    coverage_order        BIGINT NOT NULL CHECK (coverage_order IN (1, 2, 3)),
    start_date            TEXT,
    end_date              TEXT,
    active                BIGINT NOT NULL DEFAULT 1,
    version               BIGINT NOT NULL,
    updated_at_us         BIGINT NOT NULL,
    deleted               BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, patient_id) REFERENCES patients (org_id, id),
    FOREIGN KEY (org_id, payer_ref) REFERENCES payers (org_id, id),
    CHECK (relationship = 'self'
           OR (subscriber_given IS NOT NULL AND subscriber_family IS NOT NULL)),
    CHECK (start_date IS NULL OR end_date IS NULL OR start_date <= end_date)
);
-- At most one active primary, secondary and tertiary coverage per patient.
CREATE UNIQUE INDEX coverages_order ON coverages (org_id, patient_id, coverage_order)
    WHERE active = 1 AND deleted = 0;
CREATE INDEX coverages_payer ON coverages (org_id, payer_ref);

-- Card images, kept with who uploaded them; a newer upload of a side
-- supersedes the older one, which stays for the record.
CREATE TABLE coverage_cards (
    org_id         TEXT   NOT NULL,
    id             TEXT   NOT NULL,
    coverage_id    TEXT   NOT NULL,
    side           TEXT   NOT NULL CHECK (side IN ('front','back')),
    content_type   TEXT   NOT NULL CHECK (content_type IN ('image/jpeg','image/png','image/webp')),
    bytes          BLOB   NOT NULL CHECK (length(bytes) BETWEEN 1 AND 5242880),
    uploaded_at_us BIGINT NOT NULL,
    uploaded_by    TEXT   NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, coverage_id) REFERENCES coverages (org_id, id)
);
CREATE INDEX coverage_cards_coverage ON coverage_cards (org_id, coverage_id, side, uploaded_at_us);
