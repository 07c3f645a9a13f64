-- Search indexes carry (created_at, scan_id) so a broad name prefix is
-- ranked from the index alone; the queue's country list gets its own table
-- instead of a DISTINCT over every case.
DROP INDEX processes_search_name;
DROP INDEX processes_search_surname;
DROP INDEX processes_document_number;
CREATE INDEX processes_search_name ON processes(search_name, created_at, scan_id);
CREATE INDEX processes_search_surname ON processes(search_surname, created_at, scan_id);
CREATE INDEX processes_document_number ON processes(document_number, created_at, scan_id);

CREATE TABLE process_countries (
    country_id TEXT PRIMARY KEY
);
INSERT INTO process_countries (country_id)
    SELECT DISTINCT country_id FROM processes WHERE country_id IS NOT NULL;
