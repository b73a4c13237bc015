"""What every marketplace capability shares: limits, page tokens, the schema's MetaData,
the transaction context and the servicer's decoding helpers."""
