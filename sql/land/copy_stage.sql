COPY _stage (_event_key, seq, event, occurred_at, is_email, origin, payload) FROM STDIN
