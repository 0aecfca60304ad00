"""How the weight importers list names in an error: the first few, then how many more."""

MAX_LISTED = 8  # names listed per problem in an error


def listing(names: list) -> str:
    """`names` joined by commas, cut after MAX_LISTED with a count of the rest."""
    more = len(names) - MAX_LISTED
    return ", ".join(names[:MAX_LISTED]) + (f", and {more} more" if more > 0 else "")
