-- processes.scan_id has been COLLATE "C" since 0001 (byte order, for the
-- scanId prefix ranges), but the tables that refer to it kept the default
-- collation. Comparing the two columns (a join, a correlated subquery)
-- then has no common collation, and PostgreSQL cannot use the other
-- table's scan_id index: getVerificationProcessData and every decision
-- read the whole evidence table for each case (7 ms at 20,000 evidence
-- rows, growing with the table). Same bytes, same equality; only the
-- indexes on these columns are rebuilt.
ALTER TABLE evidence ALTER COLUMN scan_id TYPE TEXT COLLATE "C";
ALTER TABLE decisions ALTER COLUMN scan_id TYPE TEXT COLLATE "C";
ALTER TABLE field_edits ALTER COLUMN scan_id TYPE TEXT COLLATE "C";
ALTER TABLE notes ALTER COLUMN scan_id TYPE TEXT COLLATE "C";
ALTER TABLE proposals ALTER COLUMN scan_id TYPE TEXT COLLATE "C";
ALTER TABLE qa_reviews ALTER COLUMN scan_id TYPE TEXT COLLATE "C";
ALTER TABLE replaced_evidence ALTER COLUMN scan_id TYPE TEXT COLLATE "C";
ALTER TABLE retakes ALTER COLUMN scan_id TYPE TEXT COLLATE "C";
ALTER TABLE audit_log ALTER COLUMN scan_id TYPE TEXT COLLATE "C";
ALTER TABLE webhook_events ALTER COLUMN scan_id TYPE TEXT COLLATE "C";
