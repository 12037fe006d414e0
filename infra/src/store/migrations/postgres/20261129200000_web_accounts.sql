-- Sign-in for the web pages: every user gets a unique `login` and may get
-- a password (an argon2id PHC string; never the password itself). Users
-- made before this change get `u-` and twelve hex digits of their id; the
-- bootstrap admin gets `admin` (API.md § "Sign-in and web pages").
ALTER TABLE users ADD COLUMN login TEXT;
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN password_set_at timestamptz;
UPDATE users SET login = 'u-' || substr(id, 1, 8) || substr(id, 10, 4);
UPDATE users SET login = 'admin'
WHERE id = (SELECT id FROM users WHERE name = 'bootstrap admin' AND role = 'admin'
            ORDER BY created_at, id LIMIT 1);
CREATE UNIQUE INDEX users_login ON users (login);

-- A signed-in browser: only the SHA-256 of the cookie's 256 random bits is
-- kept, with the form token (`csrf`) the session's pages carry. A session
-- ends at sign-out, after `idle` without a request (checked on each
-- request against `last_seen_at`), when its user is disabled or changes
-- their password.
CREATE TABLE web_sessions
(
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    csrf         TEXT NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
