-- Attempts being evaluated are counted apart from failures: a burst of
-- correct credentials is never refused for its own concurrency, and a burst
-- of wrong ones still has at most the policy's number compared.
ALTER TABLE login_throttle ADD COLUMN inflight BIGINT NOT NULL DEFAULT 0;
