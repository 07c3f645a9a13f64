-- Four-eyes review (maker-checker). The admin's policy: one row.
CREATE TABLE review_policy (
    id BIGINT PRIMARY KEY,
    -- 1: every rejection needs a second reviewer.
    rejections BIGINT NOT NULL DEFAULT 0,
    -- 1: an accept of a case with failing validations needs one.
    failing_accepts BIGINT NOT NULL DEFAULT 0,
    -- JSON list of integrator ids whose every decision needs one.
    integrators TEXT NOT NULL DEFAULT '[]',
    -- 0-100: this share of the remaining accepts, chosen by scanId.
    sample_percent BIGINT NOT NULL DEFAULT 0,
    updated_by TEXT,
    updated_at BIGINT
);
INSERT INTO review_policy (id) VALUES (1);

-- A first reviewer's decision waiting for a second one. The same person can
-- never be both: the CHECK holds whatever the code does. One open proposal
-- per case (partial unique index).
CREATE TABLE proposals (
    id TEXT PRIMARY KEY,
    scan_id TEXT NOT NULL REFERENCES processes(scan_id) ON DELETE CASCADE,
    decision TEXT NOT NULL,
    reason TEXT,
    comment TEXT,
    rule TEXT NOT NULL,
    proposed_by TEXT NOT NULL,
    proposed_at BIGINT NOT NULL,
    outcome TEXT,
    reviewed_by TEXT,
    reviewed_at BIGINT,
    review_reason TEXT,
    CHECK (reviewed_by IS NULL OR reviewed_by <> proposed_by)
);
CREATE UNIQUE INDEX proposals_open ON proposals(scan_id) WHERE outcome IS NULL;
CREATE INDEX proposals_waiting ON proposals(proposed_at) WHERE outcome IS NULL;
