-- Quality assurance of final decisions: a supervisor's verdict on a decided
-- case. It never changes the case (final is final); it feeds overturn rates.
-- One verdict per case; the decision it judged is copied so the rates stay
-- what they were when the verdict was given.
CREATE TABLE qa_reviews (
    id TEXT PRIMARY KEY,
    scan_id TEXT NOT NULL UNIQUE REFERENCES processes(scan_id) ON DELETE CASCADE,
    reviewer TEXT NOT NULL,
    verdict TEXT NOT NULL,
    correct_state TEXT NOT NULL,
    comment TEXT,
    decided_state TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_reason TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX qa_reviews_by_agent ON qa_reviews(decided_by);

-- The rejection audit lists final decisions newest first within a state.
CREATE INDEX processes_decided ON processes(state, verification_time, scan_id);
