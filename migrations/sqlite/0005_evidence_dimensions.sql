-- Pixel size of image evidence, measured when it was accepted, so the
-- "images decodable and large enough" validation needs no decoding.
ALTER TABLE evidence ADD COLUMN width BIGINT;
ALTER TABLE evidence ADD COLUMN height BIGINT;
