"""The API's routers, one module per role (plus sign-in and system routes)."""
