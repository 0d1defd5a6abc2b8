-- Acquisition: what the drivers need per tag beyond 0001's columns.
-- string_length: characters of a string tag (two per register); byte_order /
-- word_order: NULL means the device's; retention_days: NULL means the historian's
-- global retention.
ALTER TABLE tags ADD COLUMN string_length INTEGER NOT NULL DEFAULT 0 CHECK (string_length >= 0);
ALTER TABLE tags ADD COLUMN byte_order TEXT CHECK (byte_order IN ('big', 'little'));
ALTER TABLE tags ADD COLUMN word_order TEXT CHECK (word_order IN ('big', 'little'));
ALTER TABLE tags ADD COLUMN retention_days INTEGER CHECK (retention_days > 0);
