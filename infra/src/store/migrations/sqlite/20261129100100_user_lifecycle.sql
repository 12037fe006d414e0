-- The user lifecycle: users are disabled, never deleted (the events they
-- recorded carry their id and name, and the access log names them by id).
-- A disabled user's token is refused (the lookup skips them); a rotated
-- token replaces `token_hash`, so the old one no longer matches.
ALTER TABLE users ADD COLUMN disabled_at TEXT;
-- The admin's user id, or `os:<name>` for `nuanxin users disable`.
ALTER TABLE users ADD COLUMN disabled_by TEXT;
ALTER TABLE users ADD COLUMN disabled_reason TEXT;
ALTER TABLE users ADD COLUMN token_rotated_at TEXT;

-- When each user was last seen (precision: see `infra/src/users.rs`,
-- `LastSeen`).
CREATE TABLE user_last_seen
(
    user_id TEXT PRIMARY KEY REFERENCES users (id),
    seen_at TEXT NOT NULL
) STRICT;
