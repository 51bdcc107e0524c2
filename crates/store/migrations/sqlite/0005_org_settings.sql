-- Per-organization settings (registration rules, later reminders, hours...),
-- one JSON document per setting.
CREATE TABLE org_settings (
    org_id        TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    value         TEXT   NOT NULL,
    updated_at_us BIGINT NOT NULL,
    updated_by    TEXT   NOT NULL,
    PRIMARY KEY (org_id, name)
);
