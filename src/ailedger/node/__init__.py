"""The node service: one HTTP app composed from each capability's router, plus chores."""
