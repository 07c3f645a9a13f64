-- Identity verification (issue 5): contacts and everything that verifies them.

-- The applicant, whatever door they came in by: an onboarding process, a
-- mobile-API user, or the PII of a fraud-risk report or quiz.
CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    integrator_id TEXT NOT NULL REFERENCES integrators(id),
    first_name TEXT,
    last_name TEXT,
    birthdate TEXT,
    email TEXT,
    phone TEXT,
    address1 TEXT,
    address2 TEXT,
    city TEXT,
    region TEXT,
    postal_code TEXT,
    country TEXT,
    tax_id TEXT,
    ip_address TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX contacts_integrator ON contacts(integrator_id, created_at);

-- Every phone, e-mail and address a contact has given, whether verified, and
-- which one is primary. Past addresses stay here (quiz questions use them).
CREATE TABLE contact_points (
    id TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    is_primary BIGINT NOT NULL DEFAULT 0,
    verified_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (contact_id, kind, value)
);
CREATE INDEX contact_points_value ON contact_points(kind, value);

ALTER TABLE processes ADD COLUMN contact_id TEXT;
CREATE INDEX processes_contact ON processes(contact_id);

-- Mobile-API (Apto-style) users: one per contact. Tokens stored hashed.
CREATE TABLE mobile_users (
    id TEXT PRIMARY KEY,
    integrator_id TEXT NOT NULL REFERENCES integrators(id),
    contact_id TEXT NOT NULL UNIQUE REFERENCES contacts(id),
    metadata TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE user_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES mobile_users(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX user_tokens_user ON user_tokens(user_id);

-- One-time codes and magic links. Only a keyed hash of the secret is kept.
CREATE TABLE verifications (
    id TEXT PRIMARY KEY,
    integrator_id TEXT NOT NULL REFERENCES integrators(id),
    contact_id TEXT,
    user_id TEXT,
    -- phone | email | birthdate
    kind TEXT NOT NULL,
    -- mobile (Apto verifications) | otp (Verification API) | link (magic link)
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    code_hash TEXT,
    -- pending | passed | failed | expired
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    update_primary BIGINT NOT NULL DEFAULT 0,
    redirect_uri TEXT,
    secondary_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    finished_at BIGINT,
    consumed_at BIGINT
);
CREATE INDEX verifications_contact ON verifications(contact_id, created_at);
CREATE INDEX verifications_target ON verifications(integrator_id, channel, kind, target, created_at);

-- 1 request per window per client and endpoint; shared by every app server.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    last_at BIGINT NOT NULL
);

-- Every SMS and e-mail kycdesk sends; the desk shows it (the SMS channel and
-- development use it as their outbox).
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    integrator_id TEXT,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    -- outbox | sent | failed
    state TEXT NOT NULL,
    error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX messages_recent ON messages(created_at);

CREATE TABLE fraud_reports (
    id TEXT PRIMARY KEY,
    integrator_id TEXT NOT NULL REFERENCES integrators(id),
    contact_id TEXT NOT NULL REFERENCES contacts(id),
    inputs TEXT NOT NULL,
    state TEXT NOT NULL,
    categories TEXT NOT NULL,
    search TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX fraud_reports_list ON fraud_reports(integrator_id, created_at);
CREATE INDEX fraud_reports_contact ON fraud_reports(contact_id, created_at);

CREATE TABLE quizzes (
    id TEXT PRIMARY KEY,
    integrator_id TEXT NOT NULL REFERENCES integrators(id),
    contact_id TEXT NOT NULL REFERENCES contacts(id),
    inputs TEXT NOT NULL,
    -- pending | failedGetQuestions | asked | scoring | passed | failed | expired
    state TEXT NOT NULL,
    -- questions with their right answers: never sent to clients
    questions TEXT NOT NULL DEFAULT '[]',
    correct BIGINT,
    search TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX quizzes_list ON quizzes(integrator_id, created_at);
CREATE INDEX quizzes_contact ON quizzes(contact_id, created_at);

CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    integrator_id TEXT NOT NULL REFERENCES integrators(id),
    contact_id TEXT NOT NULL REFERENCES contacts(id),
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX approvals_contact ON approvals(contact_id, created_at);

-- Operator-loaded lists: watchlist, alertlist, high_risk_address,
-- non_approved_address, restricted_ip, restricted_email_domain.
CREATE TABLE risk_list_entries (
    id TEXT PRIMARY KEY,
    list TEXT NOT NULL,
    match_key TEXT NOT NULL,
    extra TEXT,
    label TEXT NOT NULL,
    loaded_at BIGINT NOT NULL
);
CREATE INDEX risk_list_lookup ON risk_list_entries(list, match_key);

-- Mobile-API sandbox: the code 000000 passes.
ALTER TABLE integrators ADD COLUMN sandbox BIGINT NOT NULL DEFAULT 0;
-- Where magic links may send the applicant back to (JSON array).
ALTER TABLE integrators ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
