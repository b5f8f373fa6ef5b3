"""What the test tiers share: helpers, stacks of real processes, traffic with ground truth.

The tiers (``unit``, ``integration``, ``e2e``, ``reliability``, ``security``, ``deploy``) never import
each other or the root ``conftest``; what two of them need lives here (an import contract in
``pyproject.toml`` keeps it so)."""
