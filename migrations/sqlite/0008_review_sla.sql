-- An integrator's review target: hours a case may wait in the desk's queues
-- before it counts as overdue. NULL: no target.
ALTER TABLE integrators ADD COLUMN sla_hours INTEGER;
