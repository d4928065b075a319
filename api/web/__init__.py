"""The web dashboard: server-rendered pages for households and the grid operator.

- :mod:`api.web.i18n`: the French and English texts and how numbers are written in each;
- :mod:`api.web.forms`: parsing and checking what a form sends (pure functions);
- :mod:`api.web.charts`: the charts, drawn as inline SVG with their text alternative;
- :mod:`api.web.views`: the figures each page shows, read from the database;
- :mod:`api.web.session`: the sign-in cookie and the per-form anti-forgery token;
- :mod:`api.web.once`: the one-time token that makes each money or registering form act once;
- :mod:`api.web.flash`: the message a page shows once after a form redirected to it;
- ``templates/`` and ``static/``: the pages, one stylesheet and one small script, all served
  locally (no CDN: the dashboard works offline).

The routes are in :mod:`api.routes.dashboard`, :mod:`api.routes.dashboard_household` and
:mod:`api.routes.dashboard_operator`.
"""
