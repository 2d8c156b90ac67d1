"""Model serving: endpoints, routing, hot reload, prediction logs and online quality."""
