"""Alert: turn events into messages for the team (console now; Telegram with the outbox)."""
