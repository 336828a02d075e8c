-- With HOOKLINE_ENCRYPT_PAYLOADS=true a receiver's stored answer is sealed like the payload it
-- answered (it often echoes it). The flag says how to read response_body: sealed bytes are the
-- UTF-8 of the keyring's `enc:v1:…` text, never guessed from the content a receiver chose.
ALTER TABLE attempts ADD COLUMN response_body_sealed boolean NOT NULL DEFAULT false;
