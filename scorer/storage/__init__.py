"""Where scores are kept: tables, the engine, the store, roll-ups, buckets, capacity."""
