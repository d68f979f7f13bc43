"""GET /api/v1/inbox (paged, the owned cases read only as far as the page goes) vs the page cut from the whole
list (what commit 2116bfe's inbox_page did: every item computed, then the first 50 kept), run in a request
context of the same URL beside it on the same app, for an opleider responsible for N open cases; alternating
rounds in one process. (Before 2116bfe's predecessor, the view answered every item: commit 0b04bd9.)"""
import os, sys, time  # noqa: E401
sys.path.insert(0, os.getcwd())
from bench.common import make_app, seed, create_schema, percentile, counted
from bench.throughput import prepare
from engine.clock import SystemClock

url, n, reqs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
create_schema(url)
app = make_app(url, clock=SystemClock())

from flask import g
from engine.inbox import inbox
from web.access_log import log_listed
from web.api.schemas import InboxItem
from web.extensions import db
from web.runtime import engine, now

# The previous paged view: the whole list (engine.inbox.inbox computes every item), then one page of it.
def old_view():
    items = inbox(db.session, engine(), g.actor, now())[:50]
    log_listed((item["case_id"], item["workflow"]) for item in items)
    db.session.commit()
    return InboxItem(many=True).dump(items)

world = seed(app)
ids, token = prepare(app, world, n)
c = app.test_client()
h = {"Authorization": f"Bearer {token}"}
import json

def old_request():
    with app.test_request_context("/api/v1/inbox", headers=h):
        app.preprocess_request()  # the API's authentication (and every before_request)
        body = json.dumps(old_view())
        db.session.remove()
    return body

for _ in range(3):
    assert c.get("/api/v1/inbox", headers=h).status_code == 200
    old_request()
with app.app_context(), counted(db.engine) as st_new:
    new_body = c.get("/api/v1/inbox", headers=h).get_json()
with app.app_context(), counted(db.engine) as st_old:
    old_body = json.loads(old_request())
times = {"before": [], "after": []}
for _ in range(reqs):
    t = time.perf_counter(); old_request(); times["before"].append(time.perf_counter() - t)
    t = time.perf_counter(); c.get("/api/v1/inbox", headers=h); times["after"].append(time.perf_counter() - t)
for k, st, items in (("before", st_old, len(old_body)), ("after", st_new, len(new_body["items"]))):
    print(f"{n} owned, {k}: p50 {percentile(times[k],50)*1e3:.1f} ms, p95 {percentile(times[k],95)*1e3:.1f} ms, "
          f"{items} items, {len(st)} statements")
