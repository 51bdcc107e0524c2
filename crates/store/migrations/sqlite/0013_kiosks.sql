-- Self check-in kiosks: each device is signed in for one location with its
-- own credential (only the SHA-256 of its secret is kept), until an admin
-- revokes it; and what a patient did at a kiosk for a visit (the consent
-- they signed and the contact changes they proposed for the desk to review).
CREATE TABLE kiosk_devices (
    org_id        TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    location_id   TEXT   NOT NULL,
    token_hash    TEXT   NOT NULL,
    csrf_token    TEXT   NOT NULL,
    created_at_us BIGINT NOT NULL,
    created_by    TEXT   NOT NULL,
    -- The last self check-in it took; NULL until the first.
    last_used_us  BIGINT,
    revoked_at_us BIGINT,
    revoked_by    TEXT,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, token_hash),
    CHECK ((revoked_at_us IS NULL) = (revoked_by IS NULL)),
    FOREIGN KEY (org_id, location_id) REFERENCES locations (org_id, id)
);

-- One self check-in per visit: a second one finds the visit arrived.
CREATE TABLE kiosk_checkins (
    org_id          TEXT   NOT NULL,
    appointment_id  TEXT   NOT NULL,
    device_id       TEXT   NOT NULL,
    at_us           BIGINT NOT NULL,
    consent_id      TEXT   NOT NULL,
    -- SHA-256 of the consent text the patient was shown.
    consent_sha256  TEXT   NOT NULL,
    signature_json  TEXT   NOT NULL,
    -- The contact changes proposed, for the desk to review; NULL when none.
    contact_json    TEXT,
    PRIMARY KEY (org_id, appointment_id),
    FOREIGN KEY (org_id, appointment_id) REFERENCES appointments (org_id, id),
    FOREIGN KEY (org_id, device_id) REFERENCES kiosk_devices (org_id, id)
);
