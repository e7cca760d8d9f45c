"""Media workers: child processes that each own whole session routers, so media uses every core.

``vidhub serve --media-workers N`` starts N workers (:class:`~vidhub.media.pool.WorkerPool`).
Each one runs :mod:`vidhub.media.worker`: an event loop with the SFU routers of the sessions
placed on it, driven over a Unix socket pair with the sans-I/O codec of
:mod:`vidhub.protocol.mediactl`. The main process keeps REST, signalling, the hub and the
store; a :class:`~vidhub.media.router.WorkerRouter` stands in for each session's router there.
Media UDP goes straight between the clients and the worker that owns the session.
"""
