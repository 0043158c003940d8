"""Customer notifications over WhatsApp template messages."""
