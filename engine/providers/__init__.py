"""Market-data providers: where 1m candles come from (synthetic, CSV files, exchanges)."""
