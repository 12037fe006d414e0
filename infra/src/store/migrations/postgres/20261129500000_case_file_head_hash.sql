-- The hash of the family's last event, kept with the case-file row that
-- reflects it (they are written in one transaction), so that a command
-- seals its event onto the chain without reading the previous event back.
-- NULL on rows written before this column existed: the command path then
-- reads the stored hash instead.
ALTER TABLE case_files ADD COLUMN head_hash text;
