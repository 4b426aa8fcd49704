"""Who may do what, and how much: token verification, the Origin policy, limits and budgets,
and the redaction of secrets from logs and of sensitive fields from the model."""
