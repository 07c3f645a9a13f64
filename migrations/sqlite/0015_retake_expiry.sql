-- A retake request the applicant let expire is closed by kycdesk (the case
-- returns to the queue it left): expired_at. An open request is one neither
-- resubmitted nor expired.
ALTER TABLE retakes ADD COLUMN expired_at BIGINT;
DROP INDEX retakes_open;
CREATE UNIQUE INDEX retakes_open ON retakes(scan_id) WHERE resubmitted_at IS NULL AND expired_at IS NULL;
CREATE INDEX retakes_expiring ON retakes(expires_at) WHERE resubmitted_at IS NULL AND expired_at IS NULL;
