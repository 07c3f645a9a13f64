-- Every word of a case's folded given names and surnames, one row each,
-- keyed in search order. The desk search walks one word's rows newest
-- first and stops at a page (top-k by keyset) instead of sorting every case
-- a surname prefix matches, and finds a word anywhere in a name (a second
-- surname, a middle name). `all_words` (" maria garcia lopez": every word
-- of the case, each after a space) lets the other words of a search be
-- checked on the entry itself, with no further read.
CREATE TABLE process_words (
    word TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    scan_id TEXT NOT NULL REFERENCES processes(scan_id) ON DELETE CASCADE,
    all_words TEXT NOT NULL,
    PRIMARY KEY (word, created_at, scan_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX process_words_of_case ON process_words(scan_id, word);

-- The name prefix indexes are replaced by the word table.
DROP INDEX processes_search_name;
DROP INDEX processes_search_surname;

-- Work the application finishes at its next start, because it needs the
-- application's own code (here: the accent folding of names).
CREATE TABLE pending_rebuilds (name TEXT PRIMARY KEY);
INSERT INTO pending_rebuilds (name) VALUES ('process_words');
