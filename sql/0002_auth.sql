-- 0002_auth: what enforcing authentication needs beyond the first schema.

-- Lockout state (see scadad/auth/lockout.py) and the TOTP replay guard: the last
-- accepted 30 s step, so an observed code can never be used a second time.
ALTER TABLE users ADD COLUMN lock_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN failure_window_start_us BIGINT;
ALTER TABLE users ADD COLUMN failure_window_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN mfa_last_step BIGINT;

-- One-time MFA recovery codes, stored as SHA-256 of the code; used_us marks a spent one.
CREATE TABLE mfa_recovery_codes (
    id {{ID}},
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    used_us BIGINT,
    UNIQUE (user_id, code_hash)
);

-- The peer that opened a session (pid from SO_PEERCRED) and why it ended.
ALTER TABLE sessions ADD COLUMN unix_pid INTEGER;
ALTER TABLE sessions ADD COLUMN revoked_by TEXT;

-- Scoped read-only API tokens for remote viewers (the HTTP endpoint). Opaque: only a
-- hash is stored; the token itself is shown once, at creation.
CREATE TABLE api_tokens (
    id {{ID}},
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    token_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL DEFAULT 'read' CHECK (scope IN ('read')),
    created_by TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    expires_us BIGINT NOT NULL,
    last_used_us BIGINT,
    revoked_us BIGINT,
    CHECK (expires_us > created_us)
);

-- The audit trail also records the peer's pid, so a record can be tied to one process.
ALTER TABLE audit_log ADD COLUMN unix_pid INTEGER;
