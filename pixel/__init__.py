"""The public HTTP face: the smart pixel. Query string -> service call -> status code."""
