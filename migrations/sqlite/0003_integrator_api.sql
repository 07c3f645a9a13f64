-- Integrator credentials for the MobbScan-compatible API. Only the SHA-256
-- of the API secret is stored; the webhook secret must stay usable to sign.
ALTER TABLE integrators ADD COLUMN api_key TEXT;
ALTER TABLE integrators ADD COLUMN secret_hash TEXT;
ALTER TABLE integrators ADD COLUMN webhook_url TEXT;
ALTER TABLE integrators ADD COLUMN webhook_secret TEXT;
ALTER TABLE integrators ADD COLUMN frame_ancestors TEXT NOT NULL DEFAULT '[]';
ALTER TABLE integrators ADD COLUMN submit_state TEXT NOT NULL DEFAULT 'PENDING_VERIFICATION';
CREATE UNIQUE INDEX integrators_api_key ON integrators(api_key);

ALTER TABLE processes ADD COLUMN onboarding_token_hash TEXT;

-- Per-instance secrets (the JWT signing key), shared by every app server.
CREATE TABLE instance_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
