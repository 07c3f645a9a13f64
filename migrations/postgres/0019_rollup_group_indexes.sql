-- The dashboard sums the rollups by agent and integrator over a range of
-- days. Keyed by day, a year's time-to-decision rows (100k at 1M cases)
-- were read in day order and sorted into groups: 0.6-1.3 s per dashboard
-- on SQLite, each with a sorter of its own. These indexes hold the rows in
-- group order with the summed columns, so a long range is one streaming
-- pass with nothing sorted; the awaiting cases are summed by hour likewise.
CREATE INDEX ttd_rollup_groups ON ttd_rollup (integrator_id, agent, bucket, day, n);
CREATE INDEX decision_rollup_groups ON decision_rollup (integrator_id, agent, state, reason, day, n, breaches);
CREATE INDEX open_by_hour_hours ON open_by_hour (hour, n);
