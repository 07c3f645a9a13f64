-- Asking the applicant to retake chosen evidence. A process has at most one
-- open request (resubmitted_at IS NULL): the partial unique index makes two
-- racing requests collide in the database, not only in the code.
CREATE TABLE retakes (
    id TEXT PRIMARY KEY,
    scan_id TEXT NOT NULL REFERENCES processes(scan_id) ON DELETE CASCADE,
    -- Comma-separated steps: front, back, selfie, video.
    steps TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT,
    lang TEXT NOT NULL,
    from_state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    resubmitted_at BIGINT
);
CREATE UNIQUE INDEX retakes_open ON retakes(scan_id) WHERE resubmitted_at IS NULL;
CREATE INDEX retakes_by_case ON retakes(scan_id, requested_at);

-- Evidence a retake replaced. The bytes stay (history and certified zip):
-- the blob is kept while any row here refers to it.
CREATE TABLE replaced_evidence (
    id TEXT PRIMARY KEY,
    scan_id TEXT NOT NULL REFERENCES processes(scan_id) ON DELETE CASCADE,
    retake_id TEXT NOT NULL REFERENCES retakes(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    evidence_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    width BIGINT,
    height BIGINT,
    replaced_at BIGINT NOT NULL
);
CREATE INDEX replaced_evidence_by_case ON replaced_evidence(scan_id, replaced_at);
CREATE INDEX replaced_evidence_by_blob ON replaced_evidence(sha256);

-- The language the applicant used on the hosted page when submitting, so a
-- retake request reopens the page in it.
ALTER TABLE processes ADD COLUMN applicant_lang TEXT;

-- Whether a blob is still referenced is asked on every replaced photo and
-- every re-issued report; without this it read the whole evidence table.
CREATE INDEX evidence_by_blob ON evidence(sha256);
