-- Carefront foundation schema (SQLite). Every table leads its keys with org_id.
-- Instants are BIGINT microseconds since the Unix epoch, UTC; flags are 0/1.

-- The tenant itself: its id equals its org_id, so the generic versioned-record
-- code serves it like every other table.
CREATE TABLE organizations (
    org_id        TEXT    NOT NULL,
    id            TEXT    NOT NULL CHECK (id = org_id),
    name          TEXT    NOT NULL,
    phone         TEXT,
    address_json  TEXT,
    active        BIGINT  NOT NULL DEFAULT 1,
    version       BIGINT  NOT NULL,
    updated_at_us BIGINT  NOT NULL,
    deleted       BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE org_counters (
    org_id TEXT   NOT NULL,
    name   TEXT   NOT NULL,
    value  BIGINT NOT NULL,
    PRIMARY KEY (org_id, name)
);

CREATE TABLE users (
    org_id          TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    username        TEXT   NOT NULL,
    display_name    TEXT   NOT NULL,
    role            TEXT   NOT NULL CHECK (role IN ('front_desk','lead','clinician','billing','admin','auditor')),
    password_hash   TEXT   NOT NULL,
    active          BIGINT NOT NULL DEFAULT 1,
    failed_count    BIGINT NOT NULL DEFAULT 0,
    locked_until_us BIGINT,
    created_at_us   BIGINT NOT NULL,
    updated_at_us   BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, username)
);

CREATE TABLE sessions (
    org_id        TEXT   NOT NULL,
    token_hash    TEXT   NOT NULL,
    user_id       TEXT   NOT NULL,
    csrf_token    TEXT   NOT NULL,
    created_at_us BIGINT NOT NULL,
    last_seen_us  BIGINT NOT NULL,
    client_addr   TEXT,
    PRIMARY KEY (org_id, token_hash),
    FOREIGN KEY (org_id, user_id) REFERENCES users (org_id, id)
);

CREATE TABLE api_tokens (
    org_id           TEXT   NOT NULL,
    id               TEXT   NOT NULL,
    name             TEXT   NOT NULL,
    role             TEXT   NOT NULL CHECK (role IN ('front_desk','lead','clinician','billing','admin','auditor')),
    token_hash       TEXT   NOT NULL,
    created_at_us    BIGINT NOT NULL,
    revoked_at_us    BIGINT,
    last_used_at_us  BIGINT,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, token_hash)
);

CREATE TABLE audit_head (
    org_id TEXT   NOT NULL PRIMARY KEY,
    seq    BIGINT NOT NULL,
    hash   TEXT   NOT NULL
);

CREATE TABLE audit_events (
    org_id        TEXT   NOT NULL,
    seq           BIGINT NOT NULL,
    at_us         BIGINT NOT NULL,
    actor_id      TEXT,
    actor_name    TEXT   NOT NULL,
    role          TEXT,
    action        TEXT   NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    patient_id    TEXT,
    client_addr   TEXT,
    outcome       TEXT   NOT NULL,
    detail        TEXT,
    prev_hash     TEXT   NOT NULL,
    hash          TEXT   NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX audit_events_time ON audit_events (org_id, at_us);
CREATE INDEX audit_events_patient ON audit_events (org_id, patient_id, at_us);
CREATE INDEX audit_events_actor ON audit_events (org_id, actor_name, at_us);

-- One row per version of every versioned record: FHIR vread/_history and the
-- "who changed what, when" view read it.
CREATE TABLE record_history (
    org_id        TEXT   NOT NULL,
    record_type   TEXT   NOT NULL,
    record_id     TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    changed_at_us BIGINT NOT NULL,
    changed_by    TEXT   NOT NULL,
    deleted       BIGINT NOT NULL DEFAULT 0,
    data          TEXT   NOT NULL,
    PRIMARY KEY (org_id, record_type, record_id, version)
);

CREATE TABLE locations (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    timezone      TEXT   NOT NULL,
    line1         TEXT   NOT NULL,
    line2         TEXT,
    city          TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    postal_code   TEXT   NOT NULL,
    country       TEXT   NOT NULL,
    phone         TEXT,
    active        BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    deleted       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE rooms (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    location_id   TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    kind          TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    deleted       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, location_id, name),
    FOREIGN KEY (org_id, location_id) REFERENCES locations (org_id, id)
);

CREATE TABLE practitioners (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    npi           TEXT,
    prefix        TEXT,
    given         TEXT   NOT NULL,
    family        TEXT   NOT NULL,
    suffix        TEXT,
    gender        TEXT,
    phone         TEXT,
    email         TEXT,
    active        BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    deleted       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, npi)
);

CREATE TABLE practitioner_roles (
    org_id          TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    practitioner_id TEXT   NOT NULL,
    location_id     TEXT   NOT NULL,
    specialty       TEXT   NOT NULL,
    active          BIGINT NOT NULL,
    version         BIGINT NOT NULL,
    updated_at_us   BIGINT NOT NULL,
    deleted         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, practitioner_id) REFERENCES practitioners (org_id, id),
    FOREIGN KEY (org_id, location_id) REFERENCES locations (org_id, id)
);

CREATE TABLE patients (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    mrn           TEXT   NOT NULL,
    given         TEXT   NOT NULL,
    middle        TEXT,
    family        TEXT   NOT NULL,
    birth_date    TEXT   NOT NULL,
    sex           TEXT   NOT NULL,
    phone         TEXT,
    email         TEXT,
    line1         TEXT,
    line2         TEXT,
    city          TEXT,
    state         TEXT,
    postal_code   TEXT,
    country       TEXT,
    language      TEXT,
    version       BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    deleted       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, mrn)
);
CREATE INDEX patients_family ON patients (org_id, family);
CREATE INDEX patients_birth_date ON patients (org_id, birth_date);
