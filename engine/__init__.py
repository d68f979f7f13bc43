"""Domain-agnostic workflow runtime: definitions, machines, guards, the transition
command, the audit chain, deadlines and the clock. Never imports Flask."""
