-- Visit flow: the visit of each appointment on its day and the history of
-- its steps, the rooms board, checklists per room kind, restock tasks, and
-- each location's stream of board changes (what carries live updates from
-- one server to the boards open on every other).

-- A visit is named by its appointment: one visit per appointment. Its room
-- is not kept here but in room_states, so the two cannot disagree. `by_*`
-- is who set the current status (none while it is the appointment's own).
CREATE TABLE visits (
    org_id         TEXT   NOT NULL,
    appointment_id TEXT   NOT NULL,
    status         TEXT   NOT NULL CHECK (status IN ('scheduled','arrived','checked-in','roomed',
        'with-provider','checkout','completed','no-show','left-without-being-seen','cancelled')),
    since_us       BIGINT NOT NULL,
    by_kind        TEXT   CHECK (by_kind IN ('user','kiosk')),
    by_id          TEXT,
    by_name        TEXT,
    -- The number of events in the history; the last event's seq.
    version        BIGINT NOT NULL CHECK (version >= 0),
    PRIMARY KEY (org_id, appointment_id),
    CHECK (by_kind IS NULL OR by_name IS NOT NULL OR (by_kind = 'kiosk' AND by_id IS NOT NULL)),
    FOREIGN KEY (org_id, appointment_id) REFERENCES appointments (org_id, id)
);

CREATE TABLE visit_events (
    org_id               TEXT   NOT NULL,
    appointment_id       TEXT   NOT NULL,
    seq                  BIGINT NOT NULL CHECK (seq >= 1),
    at_us                BIGINT NOT NULL,
    from_status          TEXT   NOT NULL CHECK (from_status IN ('scheduled','arrived','checked-in',
        'roomed','with-provider','checkout','completed','no-show','left-without-being-seen','cancelled')),
    to_status            TEXT   NOT NULL CHECK (to_status IN ('scheduled','arrived','checked-in',
        'roomed','with-provider','checkout','completed','no-show','left-without-being-seen','cancelled')),
    room_id              TEXT,
    by_kind              TEXT   NOT NULL CHECK (by_kind IN ('user','kiosk')),
    by_id                TEXT,
    by_name              TEXT,
    -- 1 when the visit followed a change of its appointment made elsewhere.
    followed_appointment BIGINT NOT NULL CHECK (followed_appointment IN (0, 1)),
    PRIMARY KEY (org_id, appointment_id, seq),
    CHECK ((to_status = 'roomed') = (room_id IS NOT NULL)),
    CHECK (by_name IS NOT NULL OR (by_kind = 'kiosk' AND by_id IS NOT NULL)),
    FOREIGN KEY (org_id, appointment_id) REFERENCES visits (org_id, appointment_id),
    FOREIGN KEY (org_id, room_id) REFERENCES rooms (org_id, id)
);

-- The rooms board: one row per directory room once it has been used (a room
-- without a row is ready). The primary key lets a room hold one visit; the
-- unique index keeps a visit in one room.
CREATE TABLE room_states (
    org_id         TEXT   NOT NULL,
    room_id        TEXT   NOT NULL,
    status         TEXT   NOT NULL CHECK (status IN ('ready','occupied','needs_cleaning','out_of_service')),
    appointment_id TEXT,
    reason         TEXT,
    since_us       BIGINT NOT NULL,
    PRIMARY KEY (org_id, room_id),
    CHECK ((status = 'occupied') = (appointment_id IS NOT NULL)),
    CHECK ((status = 'out_of_service') = (reason IS NOT NULL)),
    FOREIGN KEY (org_id, room_id) REFERENCES rooms (org_id, id),
    FOREIGN KEY (org_id, appointment_id) REFERENCES visits (org_id, appointment_id)
);
CREATE UNIQUE INDEX room_states_visit ON room_states (org_id, appointment_id)
    WHERE appointment_id IS NOT NULL;

-- The cleaning checklist and supply par levels of a kind of room; the id is
-- the room kind. A versioned record with history.
CREATE TABLE room_checklists (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL CHECK (id IN ('exam','procedure','consult','ultrasound')),
    cleaning_json TEXT   NOT NULL,
    supplies_json TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    deleted       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id)
);

-- Supplies below par in a room, to restock. A room has at most one open
-- task: a new count updates it, and closes it when everything is at par.
CREATE TABLE restock_tasks (
    org_id         TEXT   NOT NULL,
    id             TEXT   NOT NULL,
    room_id        TEXT   NOT NULL,
    shortfall_json TEXT   NOT NULL,
    status         TEXT   NOT NULL CHECK (status IN ('open','done','dismissed')),
    created_at_us  BIGINT NOT NULL,
    created_by     TEXT   NOT NULL,
    updated_at_us  BIGINT NOT NULL,
    closed_at_us   BIGINT,
    closed_by      TEXT,
    PRIMARY KEY (org_id, id),
    CHECK ((status = 'open') = (closed_at_us IS NULL)),
    FOREIGN KEY (org_id, room_id) REFERENCES rooms (org_id, id)
);
CREATE UNIQUE INDEX restock_tasks_open ON restock_tasks (org_id, room_id) WHERE status = 'open';
CREATE INDEX restock_tasks_status ON restock_tasks (org_id, status, created_at_us);

-- Every change of a visit or room, in the transaction that makes it, under
-- the next number of its location (the org_counters row 'board:<location>'
-- hands them out and is held until commit, so numbers commit in order and
-- without gaps). Boards read `seq > last seen`.
CREATE TABLE board_events (
    org_id      TEXT   NOT NULL,
    location_id TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    at_us       BIGINT NOT NULL,
    payload     TEXT   NOT NULL,
    PRIMARY KEY (org_id, location_id, seq),
    FOREIGN KEY (org_id, location_id) REFERENCES locations (org_id, id)
);
