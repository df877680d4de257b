"""Reading e-mail: MIME structure, headers, text decoding, automated mail, bounces, authentication
results, winmail.dat."""
