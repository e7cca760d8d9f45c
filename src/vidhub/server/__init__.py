"""The aiohttp edge: REST, signalling, event hub and web assets on one port."""
