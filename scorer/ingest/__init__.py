"""Where news enters: feed sources and kinds, fetching, parsing, ticker tagging and its data."""
