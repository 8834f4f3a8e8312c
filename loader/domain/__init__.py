"""The domain, pure and without I/O: the webhook contract, the collection registry, what `drip sync` copies, sample bodies."""
