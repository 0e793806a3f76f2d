"""Market time: the NYSE calendar, the trigger, the scheduler lock, Sentry Crons."""
