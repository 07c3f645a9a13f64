-- Pixel size of image evidence, measured when it was accepted, so the
-- "images decodable and large enough" validation needs no decoding.
ALTER TABLE evidence ADD COLUMN width BIGINT;
ALTER TABLE evidence ADD COLUMN height BIGINT;

-- After the applicant submits, send the integrator's top window (not just
-- the iframe) to redirectUrl.
ALTER TABLE integrators ADD COLUMN redirect_top BIGINT NOT NULL DEFAULT 0;
