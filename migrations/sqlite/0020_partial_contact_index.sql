-- Most cases have no contact. SQLite's statistics count every NULL as one
-- value, so the full index looked like a million rows per contact and the
-- planner read the whole processes table for a contact's timeline (the
-- case page of any case with a contact). A partial index holds only the
-- cases that have one; `contact_id = ?` implies it is not NULL, so every
-- lookup by contact can use it.
DROP INDEX IF EXISTS processes_contact;
CREATE INDEX processes_contact ON processes(contact_id) WHERE contact_id IS NOT NULL;
