"""Run notifications: the body a receiver gets (`schemas`), its signed, retried delivery
(`delivery`), and what decides and records it (`service`). The worker's job that sends one is
`app.workers.notifications`."""
