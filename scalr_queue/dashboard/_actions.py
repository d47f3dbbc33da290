"""The dashboard's actions: POST only, CSRF-checked, each answered by a redirect and a one-line result.

Every action goes through the same Python API the CLI uses (``QueueClient`` and its
``failed`` set), so the dashboard can do nothing the API cannot.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from .._errors import ConfigurationError, JobNotFoundError, QueueUnavailableError, ScalrQueueError
from ..control._cancel import CancelOutcome
from ._access import CSRF_FIELD, Refused, check_csrf
from ._context import Dashboard, set_flash, valid_queue

MAX_BODY = 16 * 1024  # a form here is a few short fields
JOB_ACTIONS = {"cancel", "retry", "purge"}
ACTIONS = JOB_ACTIONS | {"pause", "resume", "retry-all", "purge-all", "hold", "release"}
STATES = {"ready", "scheduled", "running", "held", "failed", "complete", "cancelled"}


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded form, first value per field (no multipart parser needed for a few fields)."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ConfigurationError(f"the form is {len(body)} bytes, over the {MAX_BODY} this dashboard accepts")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {k: v[0] for k, v in fields.items()}


async def act(dash: Dashboard, request: Request) -> Response:
    queue, action = request.path_params["queue"], request.path_params["action"]
    if not valid_queue(queue) or action not in ACTIONS:
        return PlainTextResponse(f"no action {action!r} on queue {queue!r}\n", 404)
    form = await _form(request)
    try:
        check_csrf(request, form.get(CSRF_FIELD))
    except Refused as exc:
        return PlainTextResponse(exc.reason + "\n", exc.status)
    links = dash.links(request)
    job_id = form.get("job_id", "").strip()
    state = form.get("state") if form.get("state") in STATES else None
    if action == "purge":  # the job is gone after it: back to the list it was in
        back = links.queue(queue, state="failed")
    elif action in JOB_ACTIONS and job_id:
        back = links.job(queue, job_id)
    else:
        back = links.queue(queue, state=state)
    try:
        ok, text = await _do(dash, queue, action, job_id, form)
    except QueueUnavailableError:
        raise
    except ScalrQueueError as exc:  # a refusal in the API's own words: shown, nothing changed
        ok, text = False, str(exc)
    response = RedirectResponse(back, status_code=303)
    set_flash(response, links.root, ok, text)
    return response


async def _do(dash: Dashboard, queue: str, action: str, job_id: str, form: dict[str, str]) -> tuple[bool, str]:
    client = dash.client
    if action in JOB_ACTIONS and not job_id:
        raise ConfigurationError(f"{action} needs a job id")
    if action == "cancel":
        outcome = await client.job(job_id, queue).cancel(form.get("reason") or "cancelled from the dashboard")
        return {
            CancelOutcome.CANCELLED: (True, f"cancelled {job_id}: it had not started and will not run"),
            CancelOutcome.CANCELLING: (True, f"cancelling {job_id}: its worker was told and stops it now"),
            CancelOutcome.FINISHED: (False, f"{job_id} had already finished: nothing changed"),
        }[outcome]
    if action == "retry":
        await client.failed.retry(job_id, queue)
        return True, f"retried {job_id}: queued again with a fresh try count"
    if action == "purge":
        if not await client.failed.purge(job_id, queue):
            raise JobNotFoundError(f"job {job_id!r} is not in the failed set of queue {queue!r}")
        return True, f"purged failed job {job_id}"
    if action == "retry-all":
        report = await client.failed.retry_all(queue)
        text = f"retried {len(report.retried)} failed job(s)"
        if report.not_retried:
            text += f"; {len(report.not_retried)} left in the failed set (no payload to run, or queued again already)"
        return True, text
    if action == "purge-all":
        purged = await client.failed.purge_all(queue)
        return True, f"purged {purged.count} failed job(s)"
    if action in ("pause", "resume"):
        changed = await (client.pause(queue) if action == "pause" else client.resume(queue))
        done = "paused" if action == "pause" else "resumed"
        return True, f"queue {queue} {done}" if changed else f"queue {queue} was {done} already"
    task, where = form.get("task", "").strip(), form.get("where", "").strip() or None
    if action == "hold":
        changed = await client.hold(task, where, queue)
        name = task if where is None else f"{task} where {where}"
        return True, f"holding {name}" if changed else f"{name} was held already"
    released = await client.release(task, where, queue, drop=form.get("drop") == "1")
    if not released.holds_removed:
        return False, f"no hold on {task} in queue {queue}"
    if released.dropped:
        return True, f"released {task}: dropped {len(released.dropped)} job(s)"
    return True, f"released {task}: {released.released} job(s) back on the queue"
