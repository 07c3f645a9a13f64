-- Webhook outbox: one row per event, written in the same transaction as the
-- state change it reports. `id` is the Standard Webhooks `webhook-id`, the
-- same on every retry, so receivers can drop duplicates.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    integrator_id TEXT NOT NULL,
    scan_id TEXT NOT NULL,
    status TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- pending | delivered | failed
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    last_error TEXT
);
CREATE INDEX webhook_events_due ON webhook_events(state, next_attempt_at);
CREATE INDEX webhook_events_recent ON webhook_events(created_at);

CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    url TEXT NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_event ON webhook_attempts(event_id, at);

-- Extra headers the integrator wants on every webhook (e.g. Authorization),
-- a JSON object of name → value.
ALTER TABLE integrators ADD COLUMN webhook_headers TEXT NOT NULL DEFAULT '{}';
