"""The real servers the tests run against, each a pytest plugin of tests/support/.

- ``tests.support.postgres``: ``db_url`` (a migrated, empty database on SQLite and on PostgreSQL),
  ``engine``, ``session``, ``pg_database`` (a throw-away PostgreSQL database of one test's own);
- ``tests.support.dovecot``: ``dovecot``, ``dovecot_no_idle``, ``dovecot_minimal`` (IMAP);
- ``tests.support.relay``: ``relay`` (an SMTP relay that records what it receives);
- ``tests.support.botapi``: ``bot_api`` (a local Telegram Bot API server).

Configurations are built by tests/support/settings.py, inputs by tests/factories/.
"""

pytest_plugins = ["tests.support.postgres", "tests.support.dovecot", "tests.support.relay", "tests.support.botapi"]
