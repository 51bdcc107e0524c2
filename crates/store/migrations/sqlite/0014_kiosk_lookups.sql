-- Failed patient lookups per kiosk device (`KioskLookup::LOCKOUT`): the
-- lookups in a row that found no appointment, and until when the device
-- refuses lookups after too many (microseconds since the epoch; NULL when
-- it never was locked or the last failure did not lock it). Kept in the
-- database so that servers sharing it count the same device together.
ALTER TABLE kiosk_devices ADD COLUMN failed_lookups BIGINT NOT NULL DEFAULT 0;
ALTER TABLE kiosk_devices ADD COLUMN lookups_locked_until_us BIGINT;
