"""Store: the SQLite database and the content-addressed blob store of evidence files."""
