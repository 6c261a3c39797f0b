"""pytest fixtures that start the project's stand-in servers (filled in with each stand-in)."""
