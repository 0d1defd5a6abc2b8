"""scadactl: the command line for technicians and admins. Talks to scadad through the
API client only."""
