-- Every word of a case's folded given names and surnames, one row each. The
-- desk search walks one word's rows newest first and stops at a page (top-k
-- by keyset) instead of sorting every case a surname prefix matches, and
-- finds a word anywhere in a name (a second surname, a middle name).
CREATE TABLE process_words (
    scan_id TEXT COLLATE "C" NOT NULL REFERENCES processes(scan_id) ON DELETE CASCADE,
    word TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scan_id, word)
);
CREATE INDEX process_words_by_word ON process_words(word, created_at, scan_id);

-- The name prefix indexes are replaced by the word table.
DROP INDEX processes_search_name;
DROP INDEX processes_search_surname;

-- Work the application finishes at its next start, because it needs the
-- application's own code (here: the accent folding of names).
CREATE TABLE pending_rebuilds (name TEXT PRIMARY KEY);
INSERT INTO pending_rebuilds (name) VALUES ('process_words');
