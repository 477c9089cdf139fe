"""Market data: instruments, candles, their Redis cache and the cached API responses."""
