"""dqn_bench: one agent protocol, a resumable harness over Gymnasium, rliable reports."""
