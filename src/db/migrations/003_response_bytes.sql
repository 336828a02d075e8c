-- A receiver's response body is whatever bytes it sent: a NUL, gzip, an image. As text, Postgres
-- refused those ('invalid byte sequence for encoding "UTF8": 0x00'), the attempt could not be
-- recorded, and a delivered webhook was POSTed again. Stored as bytes; the API answers UTF-8 text
-- when it is valid and base64 otherwise (see src/db/deliveries.ts).
ALTER TABLE attempts ALTER COLUMN response_body TYPE bytea USING convert_to(response_body, 'UTF8');
