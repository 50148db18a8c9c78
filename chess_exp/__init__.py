"""chess_exp package."""
