"""The rules engine: classify the head, apply the rules, give a verdict and, when convertible, a plan.

Never prints, never exits; imports only `read` and the shared result types."""
