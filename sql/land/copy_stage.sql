COPY _stage (_event_key, event, occurred_at, is_email, origin, payload) FROM STDIN
