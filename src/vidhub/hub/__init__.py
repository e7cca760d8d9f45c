"""Event hub: expression subscriptions and delivery (ftrack event server protocol)."""
