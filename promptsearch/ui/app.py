"""The web app: Starlette routes rendering Jinja2 templates (autoescaped: prompts and inputs are written by
models and users, so every text is escaped and none is marked safe). Read-only over the runs, except the
rate form, which appends to a run's ratings.jsonl."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import PromptSearchError
from .guard import Guard
from .rating import append_rating, find_item, pending
from .runs import NotFound, RunIndex, _signature
from .views import TaskCache, compare_view, prompt_view, registry_compare, registry_view, run_row, run_view

HERE = Path(__file__).parent
CANDIDATE_ID = re.compile(r"^[0-9a-f]{6,64}$")
MAX_FORM_BYTES = 64 * 1024
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(@v[0-9]+)?$")


class UI:
    """The app's state: the runs it may show, the registry it reads, a key for its forms."""

    def __init__(self, roots, registry: Path | None = None):
        self.index = RunIndex(roots)
        self.tasks = TaskCache()
        self.registry = registry
        self.form_key = secrets.token_urlsafe(18)  # a rating form must carry it: another site cannot post one
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters["num"] = lambda v, d=3: "-" if not isinstance(v, (int, float)) else f"{v:.{d}f}"
        for name in self.env.list_templates():  # compiled at start, not on a user's first page
            self.env.get_template(name)

    def page(self, name: str, status: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**context), status_code=status)

    # ---- pages ------------------------------------------------------------------------------------------------
    def runs(self, request):
        rows = [run_row(run) for run in self.index.runs()]
        return self.page("runs.html", rows=rows, roots=[str(r) for r in self.index.roots])

    def run(self, request):
        """Rendered once per state of the run's files (and status: a lock can come and go without them)."""
        run = self._run(request)
        show_all = request.query_params.get("all") == "1"
        pages = run.__dict__.setdefault("_pages", {})
        key = (show_all, run.status)
        if key not in pages:
            view = {**run_view(run), "row": run_row(run)}
            pages[key] = self.env.get_template("run.html").render(run=view, rid=run.id, live=run.status == "running",
                                                                 show_all=show_all)
        return HTMLResponse(pages[key])

    def prompt(self, request):
        run = self._run(request)
        cid = self._candidate(run, request.path_params["cid"])
        errors = request.query_params.get("errors") == "1"
        view = prompt_view(run, self.tasks.get(run.config), cid, errors)
        return self.page("prompt.html", run=run_row(run), rid=run.id, view=view, metric=run.metric)

    def compare(self, request):
        run = self._run(request)
        if not run.board:
            raise PromptSearchError(f"{run.id}: nothing scored yet, so nothing to compare")
        best, seed = run.best or {}, run.seed or {}
        a = self._candidate(run, request.query_params.get("a") or seed.get("id") or run.board[-1]["candidate"]["id"])
        b = self._candidate(run, request.query_params.get("b") or best.get("id") or run.board[0]["candidate"]["id"])
        view = compare_view(run, self.tasks.get(run.config), a, b)
        choices = [(r["candidate"]["id"], i, r["candidate"].get("prompt", "")) for i, r in enumerate(run.board[:200], 1)]
        return self.page("compare.html", run=run_row(run), rid=run.id, view=view, choices=choices, a=a, b=b)

    def rate(self, request):
        run = self._run(request)
        task = self.tasks.get(run.config)
        if isinstance(task, str):
            return self.page("error.html", 409, message=f"cannot rate: {task}")
        items, existing, problems = pending(run.dir, task)
        try:
            pos = max(0, int(request.query_params.get("pos", "0")))
        except ValueError:
            pos = 0
        item = items[pos] if pos < len(items) else None
        return self.page("rate.html", run=run_row(run), rid=run.id, item=item, pos=pos, left=len(items),
                         total=len(existing), problems=problems, form_key=self.form_key,
                         expected=item.reference(task) if item else "", saved=request.query_params.get("saved"))

    async def rate_post(self, request):
        """The rate form is a small urlencoded body, parsed here (no multipart parser needed)."""
        from urllib.parse import parse_qsl

        from starlette.concurrency import run_in_threadpool

        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return PlainTextResponse("send the rate form (application/x-www-form-urlencoded)\n", 415)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return PlainTextResponse("form too large\n", 413)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return await run_in_threadpool(self._rate_post, request, form)

    def _rate_post(self, request, form):
        run = self._run(request)
        if not secrets.compare_digest(str(form.get("form_key", "")), self.form_key):
            return PlainTextResponse("this form is from another page or an older server; reload and rate again\n", 403)
        try:
            value = int(str(form.get("rating", "")))
        except ValueError:
            value = 0
        if not 1 <= value <= 5:
            return PlainTextResponse("rating must be 1-5\n", 400)
        task = self.tasks.get(run.config)
        if isinstance(task, str):
            return PlainTextResponse(f"cannot rate: {task}\n", 409)
        item = find_item(run.dir, task, str(form.get("candidate", "")), str(form.get("example", "")))
        if item is None or item.output is None:
            return PlainTextResponse("that output is not one this run offers for rating\n", 400)
        comment = str(form.get("comment", "")).strip()[:2000]
        append_rating(run.dir, item.rating(task, value, comment, source="ui"))
        pos = str(form.get("pos", "0"))
        pos = pos if pos.isdigit() else "0"
        return RedirectResponse(f"/run/{quote(run.id)}/rate?pos={pos}&saved={value}", status_code=303)

    def state(self, request):
        run = self._run(request)
        return JSONResponse({"status": run.status, "version": json.dumps(_signature(run.dir))})

    def registry_page(self, request):
        return self.page("registry.html", view=registry_view(self.registry))

    def registry_diff(self, request):
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not (REF.match(a) and REF.match(b)):
            raise NotFound("give two versions as NAME@vN")
        return self.page("registry_compare.html", view=registry_compare(self.registry, a, b))

    # ---- lookups: ids from URLs are only ever keys into what the server found -----------------------------------
    def _run(self, request):
        run = self.index.run(request.path_params["rid"])
        if run.error:
            raise PromptSearchError(f"{run.id}: {run.error}")
        return run

    def _candidate(self, run, cid: str) -> str:
        if not CANDIDATE_ID.match(cid or "") or cid not in run.candidates:
            raise NotFound(f"run {run.id} has no prompt {cid!r}")
        return cid


def make_app(roots, registry: Path | None = None, token: str | None = None, hosts: set[str] | None = None):
    """The ASGI app over the run folders ``roots``; ``token`` required on every request when given; ``hosts``
    the Host headers accepted (None: any)."""
    ui = UI(roots, registry)

    async def not_found(request, exc):
        return ui.page("error.html", 404, message=str(exc) or "not found")

    async def bad(request, exc):
        return ui.page("error.html", 400, message=str(exc))

    routes = [
        Route("/", ui.runs),
        Route("/registry", ui.registry_page),
        Route("/registry/compare", ui.registry_diff),
        Route("/run/{rid:path}/prompt/{cid}", ui.prompt),
        Route("/run/{rid:path}/compare", ui.compare),
        Route("/run/{rid:path}/rate", ui.rate, methods=["GET"]),
        Route("/run/{rid:path}/rate", ui.rate_post, methods=["POST"]),
        Route("/run/{rid:path}/state", ui.state),
        Route("/run/{rid:path}", ui.run),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={NotFound: not_found, PromptSearchError: bad, 404: not_found})
    app.state.ui = ui
    return Guard(app, token, hosts)
