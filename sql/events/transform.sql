-- Flatten what analysts filter on; keep the whole user object as jsonb.
SELECT
    event_id,
    ts                              AS occurred_at,
    date_trunc('day', ts)           AS day,
    kind,
    "user"['id']                    AS user_id,
    "user"                          AS actor,
    tags,
    amount
FROM source
WHERE kind IS NOT NULL
