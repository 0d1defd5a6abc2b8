"""Authentication, authorisation and sessions: who is calling, and may they."""
