"""AI providers: one interface, five functions, outputs validated by pydantic models."""
