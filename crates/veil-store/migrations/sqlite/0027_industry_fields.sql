-- Industry templates' custom fields. The built-in fields of each template live in code
-- (veil_app::industries::TEMPLATES); this table holds the fields admins add on top, one row per
-- (industry, field key), with the definition as JSON (label, type, options, sensitive, PII kind, mask).
CREATE TABLE industry_field (
    industry    TEXT    NOT NULL,
    field_key   TEXT    NOT NULL,
    definition  TEXT    NOT NULL,
    created_by  TEXT,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (industry, field_key)
);

-- A customer's custom-field values. custom_fields is what every read shows: non-sensitive values as given and,
-- for sensitive fields, only the masked display computed at write time (with the list of masked keys), so reads
-- never decrypt. custom_sealed holds the sensitive values' AES-256-GCM ciphertexts (JSON: key -> base64), sealed
-- with the customer's data key and bound to field `custom.<key>`; erasure destroys that key like for every other
-- field. Ordinary (masked) selects do not read it.
ALTER TABLE customer ADD COLUMN custom_fields TEXT NOT NULL DEFAULT '{}';
ALTER TABLE customer ADD COLUMN custom_sealed TEXT;
