"""The running service: the supervisor that starts every channel, its health report, the scheduler
and the logs."""
