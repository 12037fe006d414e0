-- `nx2:` sealed fields name their person by the last 8 bytes of the id
-- (docs/privacy.md § Sealed fields): a key not in memory is found by them.
-- `substr(subject, 20)` is that part of the id's text, `xxxx-xxxxxxxxxxxx`;
-- queries must use this very expression for the index to serve them.
CREATE INDEX person_keys_tail ON person_keys (substr(subject, 20));
