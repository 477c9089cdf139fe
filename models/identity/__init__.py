"""Identity: users, roles and permissions, login sessions, passwords and reset tokens."""
