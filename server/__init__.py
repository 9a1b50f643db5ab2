"""jitsuin.server: the only layer that knows aiohttp, SQL drivers, files and the environment."""
