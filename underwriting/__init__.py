"""The loan decision: an application's bundle valued, its enterprise scored, and the lending rules applied."""
