-- Crypto-shredding (docs/privacy.md): one data key per person, outside
-- the event log, wrapped by the installation's master key. Erasing a
-- family sets its persons' `wrapped` to NULL (the row stays, so the key is
-- never made again and the erasure time is known); on SQLite `secure_delete` is on,
-- so the old bytes do not linger in free pages.
CREATE TABLE person_keys (
    subject TEXT PRIMARY KEY,
    -- family | member | emergency_contact | contact_person
    kind TEXT NOT NULL,
    -- The family whose erasure erases this key (NULL: a contact person).
    family_id TEXT,
    -- nonce ‖ AES-256-GCM(master key, data key), the subject as associated data.
    wrapped BLOB,
    master_key_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    erased_at TEXT
);
CREATE INDEX person_keys_family ON person_keys (family_id);
CREATE INDEX person_keys_erased ON person_keys (erased_at) WHERE erased_at IS NOT NULL;
