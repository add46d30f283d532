"""Models of the peers benchmark: the same secret in two other encrypted-field libraries."""
