"""Settings: each declared once, validated at start, read from the environment and the vault."""
