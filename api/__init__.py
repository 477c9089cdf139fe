"""HTTP API: the Flask app factory, extensions, one blueprint per area."""
