-- A patient's coverages (summary, board, check-in) are read by patient; the
-- unique index on (org_id, patient_id, coverage_order) covers only active
-- ones, so those reads scanned every coverage of the organization.
CREATE INDEX coverages_patient ON coverages (org_id, patient_id);
