"""GitOps: promotion, rollback and status as changes to a GitOps repository, through a forge."""
