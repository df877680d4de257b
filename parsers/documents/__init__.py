"""Reading the qualitative analysis: text out of documents (reader), and which points of the notice
and conventions it covers (narrative)."""
