"""Use cases: what routes, consumers and the scheduler ask for."""
