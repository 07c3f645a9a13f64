-- The counters gain a shard column (see the PostgreSQL migration of the
-- same number: there concurrent writers spread over shards). SQLite has a
-- single writer, so it always writes shard 0 and keeps one row per key;
-- the column is here so both backends run the same SQL. A primary key
-- cannot be altered in SQLite: each table is rebuilt with its rows.
CREATE TABLE state_counts_sharded (
    state TEXT NOT NULL,
    shard INTEGER NOT NULL DEFAULT 0,
    n INTEGER NOT NULL,
    PRIMARY KEY (state, shard)
);
INSERT INTO state_counts_sharded (state, shard, n) SELECT state, 0, n FROM state_counts;
DROP TABLE state_counts;
ALTER TABLE state_counts_sharded RENAME TO state_counts;

CREATE TABLE open_by_hour_sharded (
    state TEXT NOT NULL,
    hour BIGINT NOT NULL,
    shard INTEGER NOT NULL DEFAULT 0,
    n BIGINT NOT NULL,
    PRIMARY KEY (state, hour, shard)
);
INSERT INTO open_by_hour_sharded (state, hour, shard, n) SELECT state, hour, 0, n FROM open_by_hour;
DROP TABLE open_by_hour;
ALTER TABLE open_by_hour_sharded RENAME TO open_by_hour;
CREATE INDEX open_by_hour_hours ON open_by_hour (hour, n);

CREATE TABLE decision_rollup_sharded (
    day BIGINT NOT NULL,
    integrator_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    shard INTEGER NOT NULL DEFAULT 0,
    n BIGINT NOT NULL,
    breaches BIGINT NOT NULL,
    PRIMARY KEY (day, integrator_id, agent, state, reason, shard)
);
INSERT INTO decision_rollup_sharded (day, integrator_id, agent, state, reason, shard, n, breaches)
    SELECT day, integrator_id, agent, state, reason, 0, n, breaches FROM decision_rollup;
DROP TABLE decision_rollup;
ALTER TABLE decision_rollup_sharded RENAME TO decision_rollup;
CREATE INDEX decision_rollup_groups ON decision_rollup (integrator_id, agent, state, reason, day, n, breaches);

CREATE TABLE ttd_rollup_sharded (
    day BIGINT NOT NULL,
    integrator_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    shard INTEGER NOT NULL DEFAULT 0,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, integrator_id, agent, bucket, shard)
);
INSERT INTO ttd_rollup_sharded (day, integrator_id, agent, bucket, shard, n)
    SELECT day, integrator_id, agent, bucket, 0, n FROM ttd_rollup;
DROP TABLE ttd_rollup;
ALTER TABLE ttd_rollup_sharded RENAME TO ttd_rollup;
CREATE INDEX ttd_rollup_groups ON ttd_rollup (integrator_id, agent, bucket, day, n);
