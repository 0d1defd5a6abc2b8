-- Energy: what meters need of their tags, and of the energy tables, beyond 0001.
-- tags.sentinels_json: raw values a device sends for "not available" (the tag goes BAD
-- instead of showing them); tags.transform: a device encoding decoded after scaling
-- ('pf_4q': the four-quadrant power factor of Schneider PM5000-family meters).
ALTER TABLE tags ADD COLUMN sentinels_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tags ADD COLUMN transform TEXT CHECK (transform IS NULL OR transform IN ('pf_4q'));
-- Meters: the tags behind each quantity ({"import_kwh": "site/energy/m1/import_kwh", ...})
-- and the prefix its template's tags were created under. Templates shipped in
-- etc/meter-templates are marked so an update of the files replaces them at start.
ALTER TABLE energy_meters ADD COLUMN points_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE energy_meters ADD COLUMN tag_prefix TEXT;
ALTER TABLE meter_templates ADD COLUMN shipped BOOLEAN NOT NULL DEFAULT FALSE;
-- Where a grid emission factor comes from (agency, edition, year): a figure without its
-- source cannot be audited.
ALTER TABLE renewable_sources ADD COLUMN factor_source TEXT;
