-- The normalized interaction an event completed, as JSON: what a mapping is
-- applied to. Kept so that an event whose mapping failed can be mapped
-- again after the fix (the raw body alone is not enough for sources that
-- assemble an interaction from several events), and so that an admin can
-- preview a mapping against recent real interactions.
ALTER TABLE events ADD COLUMN interaction BLOB;
CREATE INDEX events_failed ON events (id) WHERE state = 'mapping_failed';
