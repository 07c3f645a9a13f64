-- Foundation schema (PostgreSQL twin of migrations/sqlite). Search and key
-- columns use the C collation so prefix ranges and keyset order match SQLite.
-- Timestamps are UTC milliseconds since the epoch (BIGINT in
-- PostgreSQL) so that both backends share one SQL dialect through sqlx::Any.

CREATE TABLE integrators (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

-- Failed logins are counted per normalised e-mail whether or not the account
-- exists, so lockout behaves identically for unknown addresses.
CREATE TABLE login_throttle (
    email TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0
);

-- Only the SHA-256 of the session token is stored: a database dump yields no
-- usable session.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    client_addr TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE processes (
    scan_id TEXT COLLATE "C" PRIMARY KEY,
    integrator_id TEXT NOT NULL REFERENCES integrators(id),
    state TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    country_id TEXT,
    doc_type TEXT,
    doc_specific_type TEXT,
    redirect_url TEXT,
    verification_extra_data TEXT NOT NULL DEFAULT '{}',
    license_id TEXT,
    verification_result TEXT,
    agent TEXT,
    document TEXT NOT NULL DEFAULT '{}',
    extra_parameters TEXT NOT NULL DEFAULT '[]',
    validations TEXT NOT NULL DEFAULT '{}',
    failing_validations TEXT NOT NULL DEFAULT '',
    facial_matching_score DOUBLE PRECISION,
    facial_liveness_score DOUBLE PRECISION,
    search_name TEXT COLLATE "C" NOT NULL DEFAULT '',
    search_surname TEXT COLLATE "C" NOT NULL DEFAULT '',
    document_number TEXT COLLATE "C" NOT NULL DEFAULT '',
    pdf_checksum TEXT,
    rejection_reason TEXT,
    comment TEXT,
    client_info TEXT,
    claimed_by TEXT,
    claimed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    verification_time BIGINT
);
-- Work queues page oldest-first by (created_at, scan_id) within a state.
CREATE INDEX processes_queue ON processes(state, created_at, scan_id);
CREATE INDEX processes_integrator ON processes(integrator_id, state, created_at, scan_id);
CREATE INDEX processes_search_name ON processes(search_name);
CREATE INDEX processes_search_surname ON processes(search_surname);
CREATE INDEX processes_document_number ON processes(document_number);
CREATE INDEX processes_claimed ON processes(claimed_by);

-- Per-state counts kept in the same transaction as every state change so the
-- queue tabs never count a million rows.
CREATE TABLE state_counts (
    state TEXT PRIMARY KEY,
    n BIGINT NOT NULL
);

CREATE TABLE evidence (
    id TEXT PRIMARY KEY,
    scan_id TEXT NOT NULL REFERENCES processes(scan_id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    evidence_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (scan_id, kind, evidence_type)
);

CREATE TABLE field_edits (
    id TEXT PRIMARY KEY,
    scan_id TEXT NOT NULL REFERENCES processes(scan_id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    original_value TEXT,
    old_value TEXT,
    new_value TEXT,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX field_edits_scan ON field_edits(scan_id, at);

CREATE TABLE notes (
    id TEXT PRIMARY KEY,
    scan_id TEXT NOT NULL REFERENCES processes(scan_id) ON DELETE CASCADE,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX notes_scan ON notes(scan_id, at);

CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    scan_id TEXT NOT NULL REFERENCES processes(scan_id) ON DELETE CASCADE,
    decision TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    comment TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX decisions_scan ON decisions(scan_id, at);

-- Append-only, hash-chained. seq is assigned as previous + 1 so two writers
-- racing for the same position collide on the primary key instead of forking
-- the chain.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    scan_id TEXT,
    client_addr TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_scan ON audit_log(scan_id, seq);
