-- The counters every state change shares were what bounded PostgreSQL
-- decisions: each decision upserts the same state_counts and open_by_hour
-- rows (and, for the integrator channel, the same rollup rows of the day),
-- and holds their row locks until it commits, about eight round trips
-- later; pg_stat_activity sampled during the bench showed 80 % of the
-- waits on those rows. Each counter is now split into shards: a writer
-- upserts one shard chosen at random, readers sum the shards, so
-- concurrent writers mostly lock different rows. SQLite, whose single
-- writer has no row locks to queue on, always writes shard 0. Shards of
-- past days are folded back into shard 0 (see store::metrics::fold_shards).
ALTER TABLE state_counts ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE state_counts DROP CONSTRAINT state_counts_pkey;
ALTER TABLE state_counts ADD PRIMARY KEY (state, shard);

ALTER TABLE open_by_hour ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE open_by_hour DROP CONSTRAINT open_by_hour_pkey;
ALTER TABLE open_by_hour ADD PRIMARY KEY (state, hour, shard);

ALTER TABLE decision_rollup ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE decision_rollup DROP CONSTRAINT decision_rollup_pkey;
ALTER TABLE decision_rollup ADD PRIMARY KEY (day, integrator_id, agent, state, reason, shard);

ALTER TABLE ttd_rollup ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ttd_rollup DROP CONSTRAINT ttd_rollup_pkey;
ALTER TABLE ttd_rollup ADD PRIMARY KEY (day, integrator_id, agent, bucket, shard);
