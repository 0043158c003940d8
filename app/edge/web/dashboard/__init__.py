"""The owner's dashboard: session sign-in, the live calendar, bookings and the money pages."""
