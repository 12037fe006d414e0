-- An alert inbox of one jurisdiction in one status (a caseworker's open
-- alerts): the status and the village-code range both narrow the index, so
-- the planner no longer walks every open alert of the region in id order
-- to find a township's fifty (decisions.md, record 29).
CREATE INDEX alerts_status_village ON alerts (status, village_code, id);
