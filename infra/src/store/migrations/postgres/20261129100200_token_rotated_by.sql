-- Who gave a user their current token: the user themselves, an admin (a
-- user id), or `os:<name>` for `nuanxin users rotate-token`. An admin who
-- rotates another user's token holds a token that records in that user's
-- name; the list of users shows who did it, and when.
ALTER TABLE users ADD COLUMN token_rotated_by TEXT;
