"""Operations: logging and Sentry, the keep-alive."""
