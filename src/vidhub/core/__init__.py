"""The domain: sessions, connections, tokens, lifecycle events and the Store interface.

Nothing here knows about HTTP, WebSockets or media.
"""
