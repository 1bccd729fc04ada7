"""Who is asking, and what they may do. Imports `errors` only; no HTTP here."""
