"""Outbox delivery, letters (PDF) and calendar entries."""
