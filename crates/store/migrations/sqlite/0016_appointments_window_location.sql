-- A booking's evaluation reads, of other providers' bookings in its window,
-- those holding a room at its own location: with the location in the
-- index, they too come from the index alone, not one table lookup each.
DROP INDEX appointments_window;
CREATE INDEX appointments_window ON appointments
    (org_id, start_us, id, end_us, status, deleted, practitioner_id, location_id, resource_ids_json);
