-- What identity providers send of a name (issue 16, SPEC §2): the middle name and the display
-- name (shown as "First Second" when a source gives none).
ALTER TABLE users ADD COLUMN middle_name TEXT;
ALTER TABLE users ADD COLUMN display_name TEXT;
-- SCIM's `primary` and `display` beside the email and phone numbers, returned as sent (JSON;
-- NULL when nothing was sent).
ALTER TABLE users ADD COLUMN contact_meta TEXT;
