"""The server-rendered pages: one module per role."""
