"""The admins' Telegram bot: the bot itself, what it says (views), what it changes (actions) and
what it pushes."""
