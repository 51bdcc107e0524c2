-- The appointments and holds each committed write changed, in commit order:
-- a server's kept bookings (`store::scheduling::kept_bookings`) read the
-- changes after the number they are right at instead of every booking
-- again. `seq` is the organization's `schedule_changes` counter, advanced
-- once per transaction just before it commits (so numbers are visible in
-- the order they were handed out).
CREATE TABLE schedule_changes (
    org_id  TEXT   NOT NULL,
    seq     BIGINT NOT NULL,
    item_id TEXT   NOT NULL,
    PRIMARY KEY (org_id, seq, item_id)
);
