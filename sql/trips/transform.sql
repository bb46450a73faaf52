-- Drop GPS glitches (negative distances) and derive the duration.
SELECT
    trip_id,
    vendor,
    pickup_at,
    dropoff_at,
    dropoff_at - pickup_at          AS duration,
    passengers,
    distance_km,
    fare,
    fare / NULLIF(distance_km, 0)   AS fare_per_km,
    store_and_forward,
    gps_speeds
FROM source
WHERE distance_km >= 0
