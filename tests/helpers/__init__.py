"""What several test modules share: a tiny model, canned feeds, a fake vault, outages."""
