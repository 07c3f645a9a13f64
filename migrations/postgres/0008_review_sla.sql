-- An integrator's review target: hours a case may wait in the desk's queues
-- before it counts as overdue. NULL: no target. BIGINT: multiplied by
-- 3,600,000 ms it must not overflow.
ALTER TABLE integrators ADD COLUMN sla_hours BIGINT;
