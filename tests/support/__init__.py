"""What the tests share: builders of settings and services, and real servers (PostgreSQL, Dovecot,
an SMTP relay, a Bot API) as pytest plugins."""
