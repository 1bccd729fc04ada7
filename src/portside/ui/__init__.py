"""The web UI: server-rendered pages over the same services and access checks as /api/v2.0.

Pages are Jinja2 templates (autoescaped) rendered by thin views (`views/`), one module per
area; htmx, vendored with the API's Swagger UI, only makes them quicker: every page and
every form works without JavaScript. The UI signs in with the web session of `/c/login`
(the `sid` cookie) and guards every change with that session's CSRF token, sent as a form
field or, by htmx, in X-Harbor-CSRF-Token.

    app.py       the UI's Starlette app: its routes, error pages, security headers
    visitor.py   who is looking (the session), sign-in required, the CSRF check
    render.py    templates, pages and partials, redirects with a notice
    assets.py    the UI's own stylesheet and script, served by content hash
    views/       the pages, by area
"""
