-- What lunas keeps about a transaction beyond its columns (VA terms and refunds, why it is
-- flagged for review, what the reconciler still watches), as one JSON document; NULL when empty.
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS extra TEXT;
