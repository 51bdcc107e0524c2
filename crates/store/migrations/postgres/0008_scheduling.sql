-- Scheduling: appointment types, bookable resources (directory rooms and
-- equipment), opening hours, provider templates and their exceptions,
-- appointments and the claims that make double booking impossible, holds,
-- the waitlist, front-desk tasks and idempotency keys.
--
-- Times: templates, exceptions and opening hours are wall-clock times in the
-- location's zone (ISO text, compared as text); appointments, holds and
-- claims are instants (BIGINT microseconds, UTC).

CREATE TABLE appointment_types (
    org_id                TEXT   NOT NULL,
    id                    TEXT   NOT NULL,
    name                  TEXT   NOT NULL,
    duration_minutes      BIGINT NOT NULL
        CHECK (duration_minutes > 0 AND duration_minutes <= 480 AND duration_minutes % 5 = 0),
    color                 TEXT   NOT NULL,
    specialties_json      TEXT   NOT NULL,
    practitioner_ids_json TEXT   NOT NULL,
    resource_kind         TEXT   CHECK (resource_kind IN ('exam_room','procedure_room',
        'consult_room','ultrasound_room','ultrasound_machine','ecg_machine')),
    modality              TEXT   NOT NULL CHECK (modality IN ('in_person','telehealth')),
    eligibility           TEXT   NOT NULL CHECK (eligibility IN ('new','established','any')),
    min_notice_minutes    BIGINT NOT NULL CHECK (min_notice_minutes >= 0),
    max_days_ahead        BIGINT NOT NULL CHECK (max_days_ahead BETWEEN 1 AND 730),
    instructions          TEXT,
    intake_form           TEXT,
    active                BIGINT NOT NULL DEFAULT 1,
    version               BIGINT NOT NULL,
    updated_at_us         BIGINT NOT NULL,
    deleted               BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    CHECK (modality = 'in_person' OR resource_kind IS NULL)
);

-- Rooms and equipment that hold one patient at a time. A directory room is
-- a resource under the room's own id (room_id = id); equipment has no room.
CREATE TABLE schedule_resources (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    location_id   TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    kind          TEXT   NOT NULL CHECK (kind IN ('exam_room','procedure_room',
        'consult_room','ultrasound_room','ultrasound_machine','ecg_machine')),
    room_id       TEXT,
    active        BIGINT NOT NULL DEFAULT 1,
    version       BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    deleted       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    CHECK (room_id IS NULL OR room_id = id),
    CHECK (room_id IS NULL OR kind IN ('exam_room','procedure_room','consult_room','ultrasound_room')),
    FOREIGN KEY (org_id, location_id) REFERENCES locations (org_id, id),
    FOREIGN KEY (org_id, room_id) REFERENCES rooms (org_id, id)
);
CREATE INDEX schedule_resources_location ON schedule_resources (org_id, location_id, kind);

-- A location's weekly opening hours (id = the location's id); a location
-- without a row, or a weekday without hours, is closed to in-person visits
-- outside extra sessions.
CREATE TABLE location_hours (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    hours_json    TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    deleted       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, id) REFERENCES locations (org_id, id)
);

-- A provider's weekly availability at one location; blocks as JSON.
CREATE TABLE schedule_templates (
    org_id          TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    practitioner_id TEXT   NOT NULL,
    location_id     TEXT   NOT NULL,
    effective_from  TEXT   NOT NULL,
    effective_until TEXT,
    overbook_limit  BIGINT NOT NULL CHECK (overbook_limit BETWEEN 0 AND 10),
    blocks_json     TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    updated_at_us   BIGINT NOT NULL,
    deleted         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    CHECK (effective_until IS NULL OR effective_until >= effective_from),
    FOREIGN KEY (org_id, practitioner_id) REFERENCES practitioners (org_id, id),
    FOREIGN KEY (org_id, location_id) REFERENCES locations (org_id, id)
);
CREATE INDEX schedule_templates_practitioner ON schedule_templates (org_id, practitioner_id);

-- Time off, holidays, blocked time and extra sessions. The columns beside
-- kind_json (which holds the whole kind) are there to filter and to keep
-- references honest.
CREATE TABLE schedule_exceptions (
    org_id          TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    kind            TEXT   NOT NULL CHECK (kind IN ('time_off','holiday','blocked','extra_session')),
    practitioner_id TEXT,
    location_id     TEXT,
    resource_id     TEXT,
    start_local     TEXT   NOT NULL,
    end_local       TEXT   NOT NULL,
    kind_json       TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    updated_at_us   BIGINT NOT NULL,
    deleted         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    CHECK (end_local > start_local),
    FOREIGN KEY (org_id, practitioner_id) REFERENCES practitioners (org_id, id),
    FOREIGN KEY (org_id, location_id) REFERENCES locations (org_id, id),
    FOREIGN KEY (org_id, resource_id) REFERENCES schedule_resources (org_id, id)
);
CREATE INDEX schedule_exceptions_time ON schedule_exceptions (org_id, start_local);

CREATE TABLE appointments (
    org_id               TEXT   NOT NULL,
    id                   TEXT   NOT NULL,
    patient_id           TEXT   NOT NULL,
    practitioner_id      TEXT   NOT NULL,
    location_id          TEXT   NOT NULL,
    appointment_type_id  TEXT   NOT NULL,
    resource_ids_json    TEXT   NOT NULL,
    start_us             BIGINT NOT NULL,
    end_us               BIGINT NOT NULL,
    status               TEXT   NOT NULL CHECK (status IN ('proposed','pending','booked',
        'arrived','fulfilled','cancelled','noshow','entered-in-error','checked-in','waitlist')),
    status_changed_at_us BIGINT NOT NULL,
    max_seat             BIGINT NOT NULL CHECK (max_seat BETWEEN 0 AND 20),
    cancel_reason        TEXT,
    override_reason      TEXT,
    series_id            TEXT,
    rescheduled_from     TEXT,
    arrived_at_us        BIGINT,
    reason_for_visit     TEXT,
    notes                TEXT,
    version              BIGINT NOT NULL,
    updated_at_us        BIGINT NOT NULL,
    deleted              BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    CHECK (end_us > start_us),
    CHECK (status <> 'cancelled' OR cancel_reason IS NOT NULL),
    FOREIGN KEY (org_id, patient_id) REFERENCES patients (org_id, id),
    FOREIGN KEY (org_id, practitioner_id) REFERENCES practitioners (org_id, id),
    FOREIGN KEY (org_id, location_id) REFERENCES locations (org_id, id),
    FOREIGN KEY (org_id, appointment_type_id) REFERENCES appointment_types (org_id, id),
    FOREIGN KEY (org_id, rescheduled_from) REFERENCES appointments (org_id, id)
);
CREATE INDEX appointments_start ON appointments (org_id, start_us);
CREATE INDEX appointments_practitioner ON appointments (org_id, practitioner_id, start_us);
CREATE INDEX appointments_patient ON appointments (org_id, patient_id, start_us);
CREATE INDEX appointments_location ON appointments (org_id, location_id, start_us);
CREATE INDEX appointments_series ON appointments (org_id, series_id);

-- A slot kept for one patient while they finish booking. Expired holds keep
-- nothing: readers skip them and bookings delete their claims.
CREATE TABLE appointment_holds (
    org_id              TEXT   NOT NULL,
    id                  TEXT   NOT NULL,
    patient_id          TEXT   NOT NULL,
    practitioner_id     TEXT   NOT NULL,
    location_id         TEXT   NOT NULL,
    appointment_type_id TEXT   NOT NULL,
    start_us            BIGINT NOT NULL,
    end_us              BIGINT NOT NULL,
    slot_json           TEXT   NOT NULL,
    created_at_us       BIGINT NOT NULL,
    expires_at_us       BIGINT NOT NULL,
    created_by          TEXT   NOT NULL,
    PRIMARY KEY (org_id, id),
    CHECK (end_us > start_us),
    CHECK (expires_at_us > created_at_us),
    FOREIGN KEY (org_id, patient_id) REFERENCES patients (org_id, id),
    FOREIGN KEY (org_id, appointment_type_id) REFERENCES appointment_types (org_id, id)
);
CREATE INDEX appointment_holds_start ON appointment_holds (org_id, start_us);
CREATE INDEX appointment_holds_expiry ON appointment_holds (org_id, expires_at_us);

-- The no-double-booking rule. An appointment whose status keeps time, or a
-- live hold, owns one row per (provider or resource, 5-minute granule) it
-- touches, in a seat up to its limit (rooms: seat 0 only). The primary key
-- refuses a second owner of a seat whatever the servers raced to do. Hold
-- claims carry the hold's expiry and stop counting once it passes.
CREATE TABLE appointment_claims (
    org_id        TEXT   NOT NULL,
    claim_key     TEXT   NOT NULL,
    granule_us    BIGINT NOT NULL,
    seat          BIGINT NOT NULL CHECK (seat BETWEEN 0 AND 20),
    owner_id      TEXT   NOT NULL,
    expires_at_us BIGINT,
    PRIMARY KEY (org_id, claim_key, granule_us, seat)
);
CREATE INDEX appointment_claims_owner ON appointment_claims (org_id, owner_id);

CREATE TABLE waitlist_entries (
    org_id                       TEXT   NOT NULL,
    id                           TEXT   NOT NULL,
    patient_id                   TEXT   NOT NULL,
    appointment_type_id          TEXT   NOT NULL,
    preferences_json             TEXT   NOT NULL,
    added_at_us                  BIGINT NOT NULL,
    current_appointment_start_us BIGINT,
    version                      BIGINT NOT NULL,
    updated_at_us                BIGINT NOT NULL,
    deleted                      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, patient_id) REFERENCES patients (org_id, id),
    FOREIGN KEY (org_id, appointment_type_id) REFERENCES appointment_types (org_id, id)
);
CREATE INDEX waitlist_entries_type ON waitlist_entries (org_id, appointment_type_id, added_at_us);
CREATE INDEX waitlist_entries_patient ON waitlist_entries (org_id, patient_id);

-- The front desk's worklist (a freed slot with the ranked waitlist, ...).
CREATE TABLE tasks (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    kind          TEXT   NOT NULL CHECK (kind IN ('waitlist_offer')),
    status        TEXT   NOT NULL CHECK (status IN ('open','done','dismissed')),
    payload_json  TEXT   NOT NULL,
    created_at_us BIGINT NOT NULL,
    created_by    TEXT   NOT NULL,
    closed_at_us  BIGINT,
    closed_by     TEXT,
    PRIMARY KEY (org_id, id),
    CHECK ((status = 'open') = (closed_at_us IS NULL))
);
CREATE INDEX tasks_status ON tasks (org_id, status, created_at_us);

-- A client's retry key: the first successful request's result, so that a
-- repeated request books nothing twice. `request_hash` refuses a key reused
-- for a different request.
CREATE TABLE idempotency_keys (
    org_id        TEXT   NOT NULL,
    key           TEXT   NOT NULL,
    request_hash  TEXT   NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (org_id, created_at_us);
