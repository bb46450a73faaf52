-- Keep the export's columns; add the order day for partition-friendly readers.
SELECT order_id, customer, amount, ordered_at, date_trunc('day', ordered_at) AS order_day
FROM source
