"""The customer-facing booking site: server-rendered pages (Jinja2 through Litestar's template
engine) that parse, call one use case as the JSON routes do, and render one template; small
ES modules in static/js enhance pages that already work without them."""
