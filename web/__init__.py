"""Flask app factory, auth, JSON API, HTML views, CLI and worker entry points."""
