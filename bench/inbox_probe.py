"""Quick probe: median and max of GET /api/v1/inbox for the UMCU opleider after `traject demo --scale 10000`.

Run: TRAJECT_ENV=development TRAJECT_INSTANCE=DIR python -m bench.inbox_probe (after db upgrade + demo --scale 10000 in DIR).
"""
import time, statistics
from web.app import create_app
from web.extensions import db
from web.auth import issue_token
from engine.models import User
app = create_app()
with app.app_context():
    u = db.session.query(User).filter_by(email="opleider.umcu@demo.traject.nl").one()
    tok, _ = issue_token(u, app.extensions["traject"].clock.now()); db.session.commit()
c = app.test_client()
h = {"Authorization": f"Bearer {tok}"}
times = []
for i in range(15):
    t = time.perf_counter(); r = c.get("/api/v1/inbox", headers=h); times.append(time.perf_counter() - t)
print(r.status_code, len(r.get_json()["items"]), "median %.1f ms, p95~max %.1f ms" % (statistics.median(times)*1000, max(times[2:])*1000))
