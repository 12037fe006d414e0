-- The user lifecycle: users are disabled, never deleted (the events they
-- recorded carry their id and name, and the access log names them by id).
-- A disabled user's token is refused (the lookup skips them); a rotated
-- token replaces `token_hash`, so the old one no longer matches. Both are
-- UPDATEs of `users`, so the `users_notify` trigger tells every server
-- process to drop its cached token lookups.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
-- The admin's user id, or `os:<name>` for `nuanxin users disable`.
ALTER TABLE users ADD COLUMN disabled_by text;
ALTER TABLE users ADD COLUMN disabled_reason text;
ALTER TABLE users ADD COLUMN token_rotated_at timestamptz;

-- When each user was last seen (precision: see `infra/src/users.rs`,
-- `LastSeen`). A table of its own: writing it must not fire `users_notify`
-- and flush every process's token cache.
CREATE TABLE user_last_seen
(
    user_id text        PRIMARY KEY REFERENCES users (id),
    seen_at timestamptz NOT NULL
);
