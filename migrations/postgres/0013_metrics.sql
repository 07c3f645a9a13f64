-- Rollups behind the supervisors' dashboard. They change in the same
-- transaction as the decision, insert or delete they count, so the
-- dashboard reads a few thousand rows instead of the whole processes table
-- and its numbers equal direct counts.

-- Final decisions per UTC day of the decision, integrator, agent, outcome
-- and rejection reason ('' when none); `breaches` counts those decided
-- after the integrator's review target (sla_hours) as it was then.
CREATE TABLE decision_rollup (
    day BIGINT NOT NULL,
    integrator_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    n BIGINT NOT NULL,
    breaches BIGINT NOT NULL,
    PRIMARY KEY (day, integrator_id, agent, state, reason)
);

-- Time from creation to decision as a histogram (bucket = index of the
-- first bound in domain::metrics::TTD_BOUNDS_MIN at or above it).
CREATE TABLE ttd_rollup (
    day BIGINT NOT NULL,
    integrator_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, integrator_id, agent, bucket)
);

-- Cases awaiting review per state and hour of creation (backlog by age).
CREATE TABLE open_by_hour (
    state TEXT NOT NULL,
    hour BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (state, hour)
);

-- Set once the rollups were built from the processes already stored (at
-- the first start after this migration).
CREATE TABLE rollup_meta (
    id INTEGER PRIMARY KEY,
    built_at BIGINT NOT NULL
);

-- The audit explorer's date filter.
CREATE INDEX audit_log_at ON audit_log(at);
