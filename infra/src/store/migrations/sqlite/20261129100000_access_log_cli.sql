-- Reads made from the command line (`nuanxin audit export`, `audit verify`)
-- are recorded in the access log too: by the operating-system user who ran
-- them (user_id is then the nil UUID: no Nuanxin user), with the reason they
-- had to give. Reads through the API leave both columns NULL.
ALTER TABLE access_log ADD COLUMN os_user TEXT;
ALTER TABLE access_log ADD COLUMN reason TEXT;
