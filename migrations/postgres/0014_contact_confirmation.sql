-- The hosted page can ask the applicant to confirm a phone and/or an
-- e-mail by one-time code before the document steps: none | phone |
-- email | both. phone_country is the calling code (digits, e.g. 34) the
-- page assumes for a number typed without one.
ALTER TABLE integrators ADD COLUMN confirm_contact TEXT NOT NULL DEFAULT 'none';
ALTER TABLE integrators ADD COLUMN phone_country TEXT;

-- What the applicant confirmed on the hosted page, as the process JSON
-- and the certified zip report it: [{"type", "value", "at"}] (at: ms).
ALTER TABLE processes ADD COLUMN confirmed_contacts TEXT NOT NULL DEFAULT '[]';
