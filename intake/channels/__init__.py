"""How mail comes in: the SMTP receiver and the IMAP watcher, both feeding the pipeline's one
worker."""
