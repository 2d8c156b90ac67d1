"""Users, roles, passwords, API tokens and browser sessions."""
