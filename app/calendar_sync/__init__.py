"""Google Calendar sync: a calendar per resource, booking events mirrored into it."""
