-- Every pair of distinct words of a case's folded names, once, the smaller
-- first, keyed in search order. A search of two whole words ("maria
-- garcia") is then one index range read newest first and cut at a page,
-- instead of walking one word's cases and testing each for the other:
-- that walk grew with the cases (at 1M, ~600 entries for a page of 50,
-- the word's rows scattered over many pages). Cases with more words than
-- the application pairs up (store::search_words::PAIRED_WORDS) hold one
-- row ('', '') instead, which a paired search also walks and tests, so
-- no case is missed.
CREATE TABLE process_word_pairs (
    first TEXT NOT NULL,
    second TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    scan_id TEXT NOT NULL,
    PRIMARY KEY (first, second, created_at, scan_id)
) WITHOUT ROWID;

-- The pairs are filled from the existing cases at the next start (words
-- already indexed are kept).
INSERT INTO pending_rebuilds (name) VALUES ('process_words') ON CONFLICT DO NOTHING;
