"""The web interface: regions' spaces and the coordinators' national view (an ASGI application)."""
