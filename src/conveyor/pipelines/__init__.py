"""Built-in pipelines, written on the public pipeline API like any user's."""
