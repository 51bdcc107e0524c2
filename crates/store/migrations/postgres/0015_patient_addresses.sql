-- A patient has several addresses (home, mailing, work, temporary, billing,
-- old): all of them, with their use, type and period, as JSON. NULL in rows
-- written before: their one address is the home address in line1 ... country.
-- Those columns keep holding the home address, for reading the table by hand.
ALTER TABLE patients ADD COLUMN addresses_json TEXT;
