"""Partner postbacks: rules, their macros, the outbox written in the batch, the dispatcher."""
