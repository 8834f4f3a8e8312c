-- name: archive_intent
-- Record, before writing any file, which files archiving month :month (part :part) writes:
-- a later run finishes it and may overwrite exactly these files, never someone else's.
INSERT INTO _archives (month, part, raw_file, rejects_file)
VALUES (:month, :part, :raw_file, :rejects_file)
ON CONFLICT (month, part) DO UPDATE
SET raw_file = excluded.raw_file, rejects_file = excluded.rejects_file, started_at = now()
WHERE _archives.archived_at IS NULL
