"""Live updates: committed booking events fanned out per tenant over Redis and SSE."""
