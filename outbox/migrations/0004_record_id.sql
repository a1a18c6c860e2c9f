-- The target's own id of the record a delivery wrote (a Salesforce Task id,
-- a HubSpot call id …), so that a later step can update the record it
-- created and an operator can find it in the CRM.
ALTER TABLE deliveries ADD COLUMN record_id TEXT;
ALTER TABLE attempts ADD COLUMN record_id TEXT;
