-- The calling code of a phone point, kept apart from its E.164 value so the
-- mobile API can answer {country_code, phone_number} as its reference does.
ALTER TABLE contact_points ADD COLUMN country_code TEXT;
-- The key an integrator signs POST /v1/user payloads with (application/jwt,
-- HS256), as the creating-users guide's signed payloads need it. Kept in
-- clear: verifying an HMAC needs the key itself.
ALTER TABLE integrators ADD COLUMN user_payload_key TEXT;
