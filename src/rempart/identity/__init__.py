"""Who is calling: passkey accounts, practice-software clients, sessions, roles and tenant walls."""
