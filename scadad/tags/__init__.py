"""Tags: definitions, the live tag table, computed-tag expressions, and their API services."""
