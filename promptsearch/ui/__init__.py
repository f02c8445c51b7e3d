"""``promptsearch ui``: a local web app over run folders to see, compare and rate runs.

- ``runs``    -- finding runs under the folders given and reading them (cached by file state);
- ``views``   -- what each page shows, from the logs and summaries (nothing is scored in the server);
- ``svg``     -- the best-so-far curves as SVG geometry;
- ``rating``  -- the rate form's records, appended at once (two raters lose nothing);
- ``guard``   -- Host check on loopback, the token elsewhere, security headers;
- ``app``     -- the Starlette routes and Jinja2 templates (autoescaped); ``server`` -- starting it.

Needs the ``ui`` extra (starlette, jinja2, uvicorn): ``pip install 'promptsearch[ui]'``.
"""
