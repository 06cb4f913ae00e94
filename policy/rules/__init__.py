"""One module per resource family; each exports POLICIES (a list of `policy.core.Policy`)."""
