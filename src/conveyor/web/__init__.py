"""The web UI: server-rendered pages (Jinja2) with small vendored JS (htmx, uPlot)."""
